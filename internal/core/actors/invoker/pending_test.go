package invoker

import (
	"testing"

	"github.com/edgefaas/edgefaas/internal/actors/wire"
)

// TestDeliverRefusesBadIDs: a Result with an ID the table never handed out
// (negative, zero, unknown) is dropped; it once indexed the shard array
// with a negative number and crashed the core's router.
func TestDeliverRefusesBadIDs(t *testing.T) {
	p := NewPending()
	id, reply := p.add("w")
	for _, bad := range []int{-1, -33, -(1 << 62), 0, id + 1} {
		if d := p.Deliver("w", wire.Result{ID: bad}); d != Unknown {
			t.Errorf("ID %d: %v, want Unknown", bad, d)
		}
	}
	// A worker cannot pose as the core's own "worker lost" status.
	if p.Deliver("w", wire.Result{ID: id, Status: statusWorkerLost, Node: "w"}) != Delivered {
		t.Fatal("a known ID was not delivered")
	}
	if r := <-reply; r.Status != wire.StatusError {
		t.Fatalf("status %d passed through, want StatusError", r.Status)
	}
}

// TestDeliverOnlyFromTheCallsNode: an answer is taken only from the node
// the call was sent to. Another node's answer for the same ID (it can
// guess IDs: they are sequential), whatever node its body names, is
// refused and the call keeps waiting for its own answer, which it gets.
func TestDeliverOnlyFromTheCallsNode(t *testing.T) {
	p := NewPending()
	id, reply := p.add("worker@a")
	forged := wire.Result{ID: id, Output: []byte(`{"forged":true}`), Node: "worker@a"}
	if d := p.Deliver("worker@b", forged); d != WrongSender {
		t.Fatalf("an answer from another node: %v, want WrongSender", d)
	}
	select {
	case r := <-reply:
		t.Fatalf("the caller got a forged answer: %+v", r)
	default:
	}
	if p.Len() != 1 {
		t.Fatalf("the refused answer removed the call: %d pending", p.Len())
	}
	if d := p.Deliver("worker@a", wire.Result{ID: id, Output: []byte("1"), Node: "worker@b"}); d != Delivered {
		t.Fatalf("the call's own answer: %v, want Delivered", d)
	}
	if r := <-reply; string(r.Output) != "1" || r.Node != "worker@a" {
		t.Fatalf("got %+v, want the answer of worker@a, named after its sender", r)
	}
}
