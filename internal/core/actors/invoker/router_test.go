package invoker

import (
	"log/slog"
	"testing"

	"github.com/ergo-services/ergo/gen"

	"github.com/edgefaas/edgefaas/internal/actors/wire"
)

// TestOverflowDelivers: an answer that overflowed an invoker's mailbox
// reaches its waiting caller through the invoker overflow, and an answer
// routed directly still does.
func TestOverflowDelivers(t *testing.T) {
	p := NewPending()
	r := &Router{Pending: p, Log: slog.Default()}
	id, reply := p.add("w")
	r.HandleInfo(nil, gen.MessageFallback{Tag: RouterName(0), Message: wire.Result{ID: id, Output: []byte("1")}})
	select {
	case res := <-reply:
		if string(res.Output) != "1" {
			t.Fatalf("got %+v", res)
		}
	default:
		t.Fatal("the overflowed answer was not delivered")
	}
	id, reply = p.add("w")
	r.HandleInfo(nil, wire.Result{ID: id})
	select {
	case <-reply:
	default:
		t.Fatal("the direct answer was not delivered")
	}
	if p.Len() != 0 {
		t.Fatalf("%d pending left", p.Len())
	}
}
