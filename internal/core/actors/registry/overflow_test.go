package registry

import (
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/actors/scheduler"
	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/testing/ergotest"
	"github.com/edgefaas/edgefaas/internal/testing/storetest"
)

// TestOverflowAnswersChanges floods a real registry process (mailbox of 1,
// falling back to its overflow answerer) with function changes: every
// notifier call returns, with nil or ErrBusy, none waits for its context.
func TestOverflowAnswersChanges(t *testing.T) {
	const n = 2000
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := storetest.Open(t, filepath.Join(t.TempDir(), "db"), log)
	node := ergotest.Node(t)
	ergotest.Spawn(t, node, OverflowName, 65535, "", &Overflow{Log: log})
	ergotest.Spawn(t, node, Name, 1, OverflowName, &Actor{Store: store, Table: scheduler.NewTable(), Log: log})
	reg := node.ProcessByName(Name)
	sender, _ := ergotest.Collect(t, node, "sender", 1)
	var dones []chan error
	for range n {
		// No worker in the table: the registry answers at once.
		done := make(chan error, 1)
		dones = append(dones, done)
		sender.Send(reg.Self(), Distribute{Done: done, Event: cluster.FunctionEvent{Kind: cluster.FunctionCreated,
			Function: storage.Function{Module: "_", Name: "f", Hash: "0123456789abcdef"}}})
	}
	busy, lost := 0, 0
	deadline := time.Now().Add(10 * time.Second)
	for _, done := range dones {
		select {
		case err := <-done:
			if errors.Is(err, ErrBusy) {
				busy++
			} else if err != nil {
				t.Fatalf("answer: %v", err)
			}
		case <-time.After(time.Until(deadline)):
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d changes never answered", lost, n)
	}
	if busy == 0 {
		t.Fatal("the mailbox never overflowed: the test proves nothing")
	}
	t.Logf("%d of %d changes answered busy by the overflow process", busy, n)
}
