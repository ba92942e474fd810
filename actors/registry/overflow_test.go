package registry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/actors/scheduler"
	"github.com/edgefaas/edgefaas/internal/cluster"
	"github.com/edgefaas/edgefaas/internal/ergotest"
	"github.com/edgefaas/edgefaas/storage"
)

// TestOverflowAnswersChanges floods a real registry process (mailbox of 1,
// falling back to its overflow answerer) with function changes: every
// notifier call returns, with nil or ErrBusy, none waits for its context.
func TestOverflowAnswersChanges(t *testing.T) {
	const n = 500
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := storage.Open(filepath.Join(t.TempDir(), "db"), log)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	node := ergotest.Node(t)
	ergotest.Spawn(t, node, OverflowName, 65535, "", &Overflow{Log: log})
	ergotest.Spawn(t, node, Name, 1, OverflowName, &Actor{Store: store, Table: scheduler.NewTable(), Log: log})
	notifier := &Notifier{Process: node.ProcessByName}
	var wg sync.WaitGroup
	var mu sync.Mutex
	busy, lost := 0, 0
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			// No worker in the table: the registry answers at once.
			err := notifier.FunctionChanged(ctx, cluster.FunctionEvent{Kind: cluster.FunctionCreated,
				Function: storage.Function{Module: "_", Name: "f", Hash: "0123456789abcdef"}})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrBusy):
				busy++
			case err != nil:
				lost++
			}
		}()
	}
	wg.Wait()
	if lost > 0 {
		t.Fatalf("%d of %d changes never answered", lost, n)
	}
	if busy == 0 {
		t.Fatal("the mailbox never overflowed: the test proves nothing")
	}
	t.Logf("%d of %d changes answered busy by the overflow process", busy, n)
}
