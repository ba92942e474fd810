package invoker

import (
	"log/slog"
	"testing"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/edgefaas/edgefaas/internal/actors/trust"
	"github.com/edgefaas/edgefaas/internal/actors/wire"
)

// TestRouterChecksTheSender: Receive delivers an answer from the call's
// node and refuses (and counts) one from another node; an answer that
// reached the mailbox or the overflow, where its sender is unknown, is
// refused and counted, never delivered.
func TestRouterChecksTheSender(t *testing.T) {
	p := NewPending()
	refusals := trust.NewRefusals(slog.Default())
	r := &Router{Pending: p, Log: slog.Default(), Refusals: refusals}
	id, reply := p.add("w@a")
	if !r.Receive(etf.Pid{Node: "w@b"}, wire.Result{ID: id, Output: []byte("forged")}) {
		t.Fatal("Receive left a Result to the mailbox")
	}
	if got := refusals.Count("result", trust.WrongSender); got != 1 {
		t.Fatalf("refused from the wrong sender: %v, want 1", got)
	}
	r.HandleInfo(nil, gen.MessageFallback{Tag: RouterName(0), Message: wire.Result{ID: id, Output: []byte("fallback")}})
	r.HandleInfo(nil, wire.Result{ID: id, Output: []byte("mailbox")})
	(&Overflow{Log: slog.Default(), Refusals: refusals}).HandleInfo(nil, gen.MessageFallback{Message: wire.Result{ID: id}})
	if got := refusals.Count("result", trust.Unverified); got != 3 {
		t.Fatalf("refused without a sender: %v, want 3", got)
	}
	select {
	case res := <-reply:
		t.Fatalf("delivered %+v", res)
	default:
	}
	r.Receive(etf.Pid{Node: "w@a"}, wire.Result{ID: id, Output: []byte("1")})
	select {
	case res := <-reply:
		if string(res.Output) != "1" {
			t.Fatalf("got %+v", res)
		}
	default:
		t.Fatal("the call's own answer was not delivered")
	}
	if p.Len() != 0 {
		t.Fatalf("%d pending left", p.Len())
	}
}
