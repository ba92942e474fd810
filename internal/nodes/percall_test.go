package nodes

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// TestClientGoneFreesSlot: a client that goes away while its call runs
// frees the worker's slot: the cancellation reaches the guest (a spinning
// one, with a 60 s timeout) on the remote path (wire.Cancel to the runner)
// and on the single box's direct path. The slot must be free long before
// the function's own timeout would have freed it. (The runner ran every
// call under the worker's lifetime, and the direct path ignored the
// request's context.)
func TestClientGoneFreesSlot(t *testing.T) {
	if raceDetector {
		t.Skip("runs guests: too slow under -race (see race_on_test.go)")
	}
	spin := func(t *testing.T, store *storage.Store) storage.Function {
		fn, err := store.CreateFunction(storage.Module{Name: storage.DefaultModule}, storage.NewFunction{Name: "spin", Owner: "guest",
			Code: testmodules.Read(t, "test/spin"), ABI: "funless", Metadata: storage.Metadata{TimeoutMS: 60000}})
		if err != nil {
			t.Fatal(err)
		}
		return fn
	}
	check := func(t *testing.T, c *Core, engine *wasm.Engine, fn storage.Function) {
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := c.Invoke(ctx, cluster.InvokeRequest{Function: fn, Args: json.RawMessage(`{}`)})
			errc <- err
		}()
		wait.For(t, 20*time.Second, "the call runs", func() bool { return engine.Stats().Running == 1 })
		cancel() // the client goes away
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("caller: %v", err)
		}
		// Freed well before the 60 s timeout: a third of it at most.
		if err := wait.Until(context.Background(), 20*time.Second, "the slot freed", func() bool { return engine.Stats().Running == 0 }); err != nil {
			t.Fatalf("%v: still taken by a call whose client left: %+v", err, engine.Stats())
		}
	}
	t.Run("remote", func(t *testing.T) {
		c, w, _, store := remotePairStore(t)
		check(t, c, w.Engine, spin(t, store))
	})
	t.Run("single box", func(t *testing.T) {
		c, _ := singleBox(t)
		check(t, c, c.LocalWorker().Engine, spin(t, c.cfg.Store))
	})
}

// TestQueueTimeCountsAgainstTimeout: on a worker with one slot, held by a
// spinning call (60 s timeout), a call with a 300 ms timeout that waits for
// the slot is answered "timeout" while the spinning call still holds it:
// time in the queue counts against the deadline. (The timeout clock started
// only once a slot was free.)
func TestQueueTimeCountsAgainstTimeout(t *testing.T) {
	if raceDetector {
		t.Skip("runs guests: too slow under -race (see race_on_test.go)")
	}
	c, w, fn, store := remotePairStore(t, func(wc *WorkerConfig) { wc.Engine.MaxConcurrent = 1 })
	spin, err := store.CreateFunction(storage.Module{Name: storage.DefaultModule}, storage.NewFunction{Name: "spin", Owner: "guest",
		Code: testmodules.Read(t, "test/spin"), ABI: "funless", Metadata: storage.Metadata{TimeoutMS: 60000}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Invoke(ctx, cluster.InvokeRequest{Function: spin, Args: json.RawMessage(`{}`)})
	wait.For(t, 20*time.Second, "the call runs", func() bool { return w.Engine.Stats().Running == 1 })
	short := fn
	short.Metadata.TimeoutMS = 300
	qctx, qcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer qcancel()
	_, err = c.Invoke(qctx, cluster.InvokeRequest{Function: short, Args: json.RawMessage(`{"ms":1}`)})
	if !errors.Is(err, cluster.ErrTimeout) {
		t.Fatalf("queued call: %v, want a timeout", err)
	}
	if w.Engine.Stats().Running != 1 {
		t.Fatal("the queued call was answered only after the slot was freed")
	}
}
