package invoker

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/actors/wire"
	"github.com/edgefaas/edgefaas/internal/core/actors/scheduler"
	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/failure"
	"github.com/edgefaas/edgefaas/internal/version"
)

// noCodeRunner answers every call "no code", as a worker does whose
// compiled version is dropped (for room, or replaced) each time between the
// lookup and the call: with the code resent too.
type noCodeRunner struct{ calls int }

func (r *noCodeRunner) RunContext(_ context.Context, m wire.Invoke) wire.Result {
	r.calls++
	return wire.Result{ID: m.ID, Status: wire.StatusNoCode}
}

type codes struct{}

func (codes) Code(string) ([]byte, error) { return []byte("\x00asm"), nil }

// TestCodeDroppedTwiceIsBusy: a worker that lost the code again after it
// was resent ran nothing, so the caller is told it was busy (retry
// shortly), with a reason, never a runtime error with an empty message.
func TestCodeDroppedTwiceIsBusy(t *testing.T) {
	tab := scheduler.NewTable()
	tab.Update(wire.Report{Node: "box", Arch: runtime.GOARCH, OS: runtime.GOOS, Version: version.Get().Version,
		TotalMemory: 1 << 30, FreeMemory: 1 << 30, MaxRunning: 8})
	local := &noCodeRunner{}
	iv := &Invoker{Table: tab, Pending: NewPending(), Codes: codes{}, Local: local, LocalNode: "box",
		DefaultTimeout: time.Minute, Grace: time.Second}
	fn := storage.Function{Module: "_", Name: "slow", Hash: strings.Repeat("a", 64)}
	_, err := iv.Invoke(context.Background(), cluster.InvokeRequest{Function: fn})
	if err == nil {
		t.Fatal("a call whose code was never there succeeded")
	}
	if kind := failure.Of(err); kind != failure.Busy {
		t.Errorf("kind %v (%v), want busy", kind, err)
	}
	if !strings.Contains(err.Error(), "box") || !strings.Contains(err.Error(), "code") {
		t.Errorf("error %q does not say which worker lost which code", err)
	}
	var re *cluster.RuntimeError
	if errors.As(err, &re) {
		t.Errorf("a runtime error %q for a call that never ran", re.Message)
	}
	if local.calls == 0 {
		t.Error("the runner was never called")
	}
}
