package runner

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ergo-services/ergo/gen"

	"github.com/edgefaas/edgefaas/internal/actors/wire"
	"github.com/edgefaas/edgefaas/internal/testing/ergotest"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
	"github.com/edgefaas/edgefaas/internal/wasm"
	"github.com/edgefaas/edgefaas/internal/worker/actors/cache"
)

// mailboxOnly hides Receive: invocations go through the mailbox, as they
// do before the runner's Init.
type mailboxOnly struct{ gen.ServerBehavior }

// TestOverflowAnswersBusy floods a real runner process (mailbox of 1,
// falling back to the overflow answerer, Receive hidden) with invocations:
// every one is answered, those the mailbox could not take with "busy"
// (retried elsewhere by the core), none dropped. With Receive the same
// flood never touches the mailbox: every call is answered by the runner,
// and at most maxIdleCallers goroutines stay waiting for more.
func TestOverflowAnswersBusy(t *testing.T) {
	for _, receive := range []bool{false, true} {
		name := "mailbox"
		if receive {
			name = "receive"
		}
		t.Run(name, func(t *testing.T) { flood(t, receive) })
	}
}

func flood(t *testing.T, receive bool) {
	const n = 2000
	ctx := context.Background()
	engine, err := wasm.NewEngine(ctx, wasm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close(ctx)
	store, err := cache.NewStore(engine, "", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	node := ergotest.Node(t)
	ergotest.Spawn(t, node, OverflowName, 65535, "", &Overflow{Node: "w"})
	run := &Actor{Engine: engine, Store: store, Usage: &Usage{}, Node: "w", Log: log, Ctx: ctx, Process: node.ProcessByName}
	var b gen.ProcessBehavior = mailboxOnly{run}
	if receive {
		b = run
	}
	runner := ergotest.Spawn(t, node, Name, 1, OverflowName, b)
	sink, answers := ergotest.Collect(t, node, "sink", n)
	// An unknown hash without code: the runner answers "no code" at once.
	for i := range n {
		sink.Send(runner.Self(), wire.Invoke{ID: i + 1, ReplyTo: sink.Self(), Function: "m/f", Hash: strings.Repeat("0", 64)})
	}
	seen := map[int]bool{}
	busy := 0
	deadline := time.After(20 * time.Second)
	for len(seen) < n {
		select {
		case m := <-answers:
			r, ok := m.(wire.Result)
			if !ok {
				t.Fatalf("unexpected %T", m)
			}
			seen[r.ID] = true
			switch r.Status {
			case wire.StatusBusy:
				busy++
			case wire.StatusNoCode:
			default:
				t.Fatalf("answer %+v", r)
			}
		case <-deadline:
			t.Fatalf("%d of %d invocations answered", len(seen), n)
		}
	}
	if receive {
		if busy != 0 {
			t.Fatalf("%d answered busy: Receive left them to the mailbox", busy)
		}
		// The last callers go idle just after their answers left.
		wait.For(t, 10*time.Second, "a caller idle", func() bool { return run.idle.Load() != 0 })
		if idle := run.idle.Load(); idle < 1 || idle > maxIdleCallers {
			t.Fatalf("%d callers idle after the flood, want 1..%d", idle, maxIdleCallers)
		}
		return
	}
	if busy == 0 {
		t.Fatal("the mailbox never overflowed: the test proves nothing")
	}
	t.Logf("%d answered busy by the overflow process, %d by the runner", busy, n-busy)
}
