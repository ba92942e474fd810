package invoker

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ergo-services/ergo/gen"

	"github.com/edgefaas/edgefaas/internal/actors/trust"
	"github.com/edgefaas/edgefaas/internal/actors/wire"
	"github.com/edgefaas/edgefaas/internal/testing/ergotest"
)

// mailboxOnly hides Receive: its messages go through the mailbox, as they
// do while no incarnation is live.
type mailboxOnly struct{ gen.ServerBehavior }

// TestReceiveRoutesResults floods a real invoker process (mailbox of 1, no
// fallback) with answers: through Receive every caller gets its answer,
// none waits in the mailbox. A control with Receive hidden shows the same
// load does overflow the mailbox (ergo drops silently there), so the test
// proves something. Answers come from the calls' node (a process on the
// test's node): Receive takes an answer only from there.
func TestReceiveRoutesResults(t *testing.T) {
	const n = 2000
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	node := ergotest.Node(t)
	sender, _ := ergotest.Collect(t, node, "sender", 1)
	refusals := trust.NewRefusals(log)
	flood := func(name string, pending *Pending, wait time.Duration, receive bool) int {
		var b gen.ProcessBehavior = mailboxOnly{&Router{Pending: pending, Log: log, Refusals: refusals}}
		if receive {
			b = &Router{Pending: pending, Log: log}
		}
		router := ergotest.Spawn(t, node, name, 1, "", b)
		var replies []chan wire.Result
		for range n {
			id, reply := pending.add(node.Name())
			replies = append(replies, reply)
			sender.Send(router.Self(), wire.Result{ID: id})
		}
		got := 0
		deadline := time.After(wait)
		for _, r := range replies {
			select {
			case <-r:
				got++
			case <-deadline:
				return got
			}
		}
		return got
	}
	// Through the mailbox an answer's sender is unknown: each one the
	// mailbox took is refused and counted, never delivered.
	if got := flood("control", NewPending(), time.Second, false); got != 0 {
		t.Fatalf("%d answers delivered through the mailbox, where their sender is unknown", got)
	}
	if took := refusals.Count("result", trust.Unverified); took == n {
		t.Fatalf("a mailbox of 1 took %d answers sent at once: the load never overflows, the test proves nothing", n)
	} else {
		t.Logf("through a mailbox of 1: %v of %d answers taken (and refused), the rest dropped", took, n)
	}
	if got := flood(RouterName(1), NewPending(), 10*time.Second, true); got != n {
		t.Fatalf("with Receive (mailbox of 1, no fallback): %d of %d answers reached their callers", got, n)
	}
}
