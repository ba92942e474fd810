package replication

import (
	"strconv"
	"strings"

	"github.com/hashicorp/raft"
)

// Status is what a member says of itself, for `node list` and metrics.
type Status struct {
	// Role is leader, follower, candidate or shutdown.
	Role string
	// Term is the member's current Raft term.
	Term uint64
	// Commit is the last index the member knows committed; Applied the
	// last the member applied (to its store, or to Raft itself for the
	// entries that are not commands). Lag = Commit - Applied.
	Commit, Applied, Lag uint64
	// Leader is the member this one believes leads, empty if none.
	Leader raft.ServerID
}

// Status returns the member's role, term, indexes and leader.
func (m *Member) Status() Status {
	st := m.raft.Stats()
	num := func(k string) uint64 {
		n, _ := strconv.ParseUint(st[k], 10, 64)
		return n
	}
	s := Status{
		Role:    strings.ToLower(m.raft.State().String()),
		Term:    num("term"),
		Commit:  num("commit_index"),
		Applied: m.raft.AppliedIndex(),
	}
	if s.Commit > s.Applied {
		s.Lag = s.Commit - s.Applied
	}
	_, s.Leader = m.raft.LeaderWithID()
	return s
}
