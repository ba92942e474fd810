package invoker

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ergo-services/ergo/gen"

	"github.com/edgefaas/edgefaas/internal/actors/wire"
	"github.com/edgefaas/edgefaas/internal/testing/ergotest"
)

// mailboxOnly hides Receive: its messages go through the mailbox, as they
// do while no incarnation is live.
type mailboxOnly struct{ gen.ServerBehavior }

// TestOverflowRoutesResults floods a real invoker process (mailbox of 1,
// Receive hidden) with answers: every caller gets its answer, through the
// overflow process for those the mailbox could not take. A control without
// a fallback shows the same load does overflow (ergo drops silently there).
// With Receive, the same flood reaches every caller without the mailbox.
func TestOverflowRoutesResults(t *testing.T) {
	const n = 2000
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	node := ergotest.Node(t)
	sender, _ := ergotest.Collect(t, node, "sender", 1)
	flood := func(name string, fallback string, pending *Pending, wait time.Duration, receive bool) int {
		var b gen.ProcessBehavior = mailboxOnly{&Router{Pending: pending, Log: log}}
		if receive {
			b = &Router{Pending: pending, Log: log}
		}
		router := ergotest.Spawn(t, node, name, 1, fallback, b)
		var replies []chan wire.Result
		for range n {
			id, reply := pending.add("w")
			replies = append(replies, reply)
			sender.Send(router.Self(), wire.Result{ID: id, Node: "w"})
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
	if got := flood("control", "", NewPending(), time.Second, false); got == n {
		t.Fatalf("a mailbox of 1 took %d answers sent at once: the load never overflows, the test proves nothing", n)
	} else {
		t.Logf("without a fallback: %d of %d answers delivered", got, n)
	}
	pending := NewPending()
	ergotest.Spawn(t, node, OverflowName, 65535, "", &Overflow{Pending: pending, Log: log})
	if got := flood(RouterName(0), OverflowName, pending, 10*time.Second, false); got != n {
		t.Fatalf("%d of %d answers reached their callers", got, n)
	}
	if got := flood(RouterName(1), "", NewPending(), 10*time.Second, true); got != n {
		t.Fatalf("with Receive (mailbox of 1, no fallback): %d of %d answers reached their callers", got, n)
	}
}
