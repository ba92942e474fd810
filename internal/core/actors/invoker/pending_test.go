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
		if p.Deliver(wire.Result{ID: bad}) {
			t.Errorf("ID %d delivered", bad)
		}
	}
	// A worker cannot pose as the core's own "worker lost" status.
	if !p.Deliver(wire.Result{ID: id, Status: statusWorkerLost, Node: "w"}) {
		t.Fatal("a known ID was not delivered")
	}
	if r := <-reply; r.Status != wire.StatusError {
		t.Fatalf("status %d passed through, want StatusError", r.Status)
	}
}
