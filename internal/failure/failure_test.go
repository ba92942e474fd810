package failure_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/edgefaas/edgefaas/internal/actors/wire"
	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/failure"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// TestTableMatchesWire: the wire statuses the table names are the ones
// package wire declares, and FromWire inverts them.
func TestTableMatchesWire(t *testing.T) {
	for k, status := range map[failure.Kind]int{
		failure.OK: wire.StatusOK, failure.Function: wire.StatusFunctionError, failure.Busy: wire.StatusBusy,
		failure.Runtime: wire.StatusError, failure.Timeout: wire.StatusTimeout,
	} {
		if got := k.Row().Wire; got != status {
			t.Errorf("%s: wire %d, package wire says %d", k, got, status)
		}
		if got := failure.FromWire(status); got != k {
			t.Errorf("FromWire(%d) = %s, want %s", status, got, k)
		}
	}
	if got := failure.FromWire(wire.StatusNoCode); got != failure.Runtime {
		t.Errorf("FromWire(no code) = %s: the protocol's status is no failure kind", got)
	}
}

// TestTableComplete: every kind has every name, and its record status is
// one a record may hold.
func TestTableComplete(t *testing.T) {
	records := map[string]bool{storage.StatusSuccess: true, storage.StatusFunctionError: true, storage.StatusRuntimeError: true,
		storage.StatusTimeout: true, storage.StatusBusy: true, storage.StatusNoWorker: true, storage.StatusLost: true}
	for _, k := range failure.Kinds() {
		r := k.Row()
		if r.Name == "" || r.HTTP == 0 || r.Record == "" || r.Metric == "" {
			t.Errorf("kind %d has an incomplete row: %+v", k, r)
		}
		if !records[r.Record] {
			t.Errorf("%s: record status %q is not one of storage's", k, r.Record)
		}
	}
}

// TestOf: each layer's errors carry their kind through wrapping.
func TestOf(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want failure.Kind
	}{
		{nil, failure.OK},
		{fmt.Errorf("call: %w", cluster.ErrBusy), failure.Busy},
		{cluster.ErrNoWorker, failure.NoWorker},
		{fmt.Errorf("x: %w", cluster.ErrWorkerLost), failure.WorkerLost},
		{fmt.Errorf("%w on w: late", cluster.ErrTimeout), failure.Timeout},
		{&cluster.FunctionError{Message: "no"}, failure.Function},
		{fmt.Errorf("wrapped: %w", &cluster.RuntimeError{Message: "trap"}), failure.Runtime},
		{&cluster.PlacementError{Message: "none"}, failure.Placement},
		{fmt.Errorf("%w after 1s", wasm.ErrTimeout), failure.Timeout},
		{fmt.Errorf("%w: bad", wasm.ErrTrap), failure.Runtime},
		{&wasm.FunctionError{Message: "m"}, failure.Function},
		{wasm.ErrBusy, failure.Busy},
		{context.DeadlineExceeded, failure.Timeout},
		{fmt.Errorf("gone: %w", context.Canceled), failure.Canceled},
		{errors.New("disk on fire"), failure.Internal},
		{storage.ErrNotFound, failure.Internal},
	} {
		if got := failure.Of(tc.err); got != tc.want {
			t.Errorf("Of(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
	if !errors.Is(fmt.Errorf("a: %w", cluster.ErrBusy), cluster.ErrBusy) {
		t.Error("a kinded sentinel no longer matches errors.Is")
	}
}
