package wasm_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/wait"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// sleepers starts n calls of owner that run until ctx ends (spinners:
// a guest asleep in WASI's poll_oneoff would outlive ctx), each with
// input, and returns how many have ended so far and a wait for all.
func sleepers(t *testing.T, ctx context.Context, e *wasm.Engine, m *wasm.Module, owner, input string, n int) (ended *atomic.Int64, errs chan error, wg *sync.WaitGroup) {
	ended, errs, wg = &atomic.Int64{}, make(chan error, n), &sync.WaitGroup{}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.Invoke(ctx, m, wasm.Invocation{Function: "test/spin", Owner: owner, Input: []byte(input)})
			ended.Add(1)
			errs <- err
		}()
	}
	return ended, errs, wg
}

// TestSlotsFairBetweenOwners: one owner's burst of slow calls, more than
// the engine's slots, leaves a slot to another owner's call, which is
// answered while every one of the burst's calls still runs.
func TestSlotsFairBetweenOwners(t *testing.T) {
	e := newEngine(t, wasm.Config{MaxConcurrent: 4, MaxQueue: 64})
	slow := compile(t, e, "test/spin", wasm.Limits{Timeout: 10 * time.Minute})
	hello := compile(t, e, "hello-c", wasm.Limits{})
	ctx, cancel := context.WithCancel(context.Background())
	ended, _, wg := sleepers(t, ctx, e, slow, "alice", `{}`, 8)
	defer func() { cancel(); wg.Wait() }() // the sleepers end with ctx
	wait.For(t, time.Minute, "alice's burst running or waiting", func() bool {
		s := e.Stats()
		return s.Running+s.Queued == 8 && s.Running >= 3
	})
	bctx, bcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer bcancel()
	res, err := e.Invoke(bctx, hello, wasm.Invocation{Function: "test/hello", Owner: "bob", Input: []byte(`{"name":"bob"}`)})
	if err != nil {
		t.Fatalf("bob's call behind alice's burst: %v (stats %+v)", err, e.Stats())
	}
	if n := ended.Load(); n != 0 {
		t.Fatalf("bob was answered only after %d of alice's calls ended", n)
	}
	t.Logf("bob: %s; stats %+v", res.Output, e.Stats())
}

// TestQueueBoundedByBytes: the inputs of waiting calls are bounded in
// bytes: one owner's at half the bound, all at the bound; a refused call
// is busy at once, and the others' calls still wait.
func TestQueueBoundedByBytes(t *testing.T) {
	e := newEngine(t, wasm.Config{MaxConcurrent: 1, MaxQueue: 64, MaxQueueBytes: 1 << 20})
	slow := compile(t, e, "test/spin", wasm.Limits{Timeout: 10 * time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	var calls []*sync.WaitGroup
	defer func() { // the sleepers end with ctx
		cancel()
		for _, wg := range calls {
			wg.Wait()
		}
	}()
	_, _, wg := sleepers(t, ctx, e, slow, "holder", `{}`, 1)
	calls = append(calls, wg)
	wait.For(t, time.Minute, "the slot taken", func() bool { return e.Stats().Running == 1 })
	big := `{"pad":"` + strings.Repeat("x", 400<<10) + `"}`
	_, _, wg = sleepers(t, ctx, e, slow, "alice", big, 1)
	calls = append(calls, wg)
	wait.For(t, time.Minute, "alice's first call waiting", func() bool { return e.Stats().Queued == 1 })
	try := func(owner string) error {
		c, cc := context.WithTimeout(ctx, 30*time.Second)
		defer cc()
		_, err := e.Invoke(c, slow, wasm.Invocation{Function: "test/spin", Owner: owner, Input: []byte(big)})
		return err
	}
	if err := try("alice"); !errors.Is(err, wasm.ErrBusy) {
		t.Errorf("alice's second 400 KiB call: %v; want busy (half of the 1 MiB bound is hers)", err)
	}
	_, _, wg = sleepers(t, ctx, e, slow, "bob", big, 1)
	calls = append(calls, wg)
	wait.For(t, time.Minute, "bob's call waiting beside alice's", func() bool { return e.Stats().Queued == 2 })
	if err := try("carol"); !errors.Is(err, wasm.ErrBusy) {
		t.Errorf("carol's 400 KiB call with 800 KiB waiting: %v; want busy (the 1 MiB bound)", err)
	}
}
