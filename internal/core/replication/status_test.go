package replication

import (
	"fmt"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// TestStatusAppliedCountsWhatTheStoreHolds: a member's applied index is
// what its store holds, so it never runs ahead of the state machine, yet
// it reaches the commit index when the last entries are not commands (a
// new leader's no-op after a transfer), so a settled group shows no lag.
func TestStatusAppliedCountsWhatTheStoreHolds(t *testing.T) {
	g := newGroup(t, 3, nil)
	l := g.leader()
	in := storage.Module{Name: storage.DefaultModule}
	if _, err := g.settle(CreateFunction{In: in, New: newFunction("f", "code f"), Stamp: stamp(t, l.store)}); err != nil {
		t.Fatal(err)
	}
	g.converged(l)
	if err := l.m.Raft().LeadershipTransfer().Error(); err != nil {
		t.Fatal(err)
	}
	nl := g.leader()
	// The new leader's no-op is the last entry: no state machine sees it.
	waitState(t, "every member applied the new leader's no-op, with no lag", func() (bool, string) {
		var out string
		settled := true
		for _, tm := range g.live() {
			st := tm.m.Status()
			out += fmt.Sprintf("%s %+v (state machine at %d)\n", tm.id, st, tm.m.FSM().Applied())
			if st.Applied < st.Commit || st.Lag != 0 || st.Term < 2 || st.Leader != nl.id {
				settled = false
			}
			if st.Applied > tm.m.FSM().Applied() {
				var e raft.Log
				for i := tm.m.FSM().Applied() + 1; i <= st.Applied; i++ {
					if err := tm.m.logs.GetLog(i, &e); err == nil && e.Type == raft.LogCommand {
						t.Errorf("%s reports applied %d past the command at %d its state machine has not applied", tm.id, st.Applied, i)
					}
				}
			}
		}
		return settled, out
	})
}
