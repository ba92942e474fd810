package replication

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/raft"
)

// Status is what a member says of itself, for `node list` and metrics.
type Status struct {
	// Role is leader, follower, candidate or shutdown.
	Role string `json:"role"`
	// Term is the member's current Raft term.
	Term uint64 `json:"term"`
	// Commit is the last index the member knows committed; Applied the
	// last whose effect its store holds (appliedToStore), so a read of it
	// after Applied reaches an index sees every write up to there.
	// Lag = Commit - Applied.
	Commit  uint64 `json:"commit_index"`
	Applied uint64 `json:"applied_index"`
	Lag     uint64 `json:"lag"`
	// Snapshot is the index of the member's newest snapshot, 0 before
	// its first. Restores counts the snapshots it has restored since it
	// started: a member that joins, or returns, behind the leader's
	// oldest kept entry takes the leader's snapshot instead of its log.
	Snapshot uint64 `json:"snapshot_index"`
	Restores int64  `json:"restores"`
	// Leader is the member this one believes leads, empty if none.
	Leader raft.ServerID `json:"leader"`
}

// MemberStatus is one member of the group as another sees it: its ID and
// address from the group's configuration, and its own Status, asked of it
// (Error says why not).
type MemberStatus struct {
	ID      raft.ServerID      `json:"id"`
	Address raft.ServerAddress `json:"address"`
	Voter   bool               `json:"voter"`
	Self    bool               `json:"self"`
	Status
	Error string `json:"error,omitempty"`
}

// statusFrame starts a forwarded frame that asks a member for its Status.
const statusFrame = 0xF1

// Members returns every member of the group's configuration with its
// status: this member's own, the others' asked over the group's transport
// (one at a time, each bounded by the forwarding timeout; an unreachable
// member has Error set and role "unreachable").
func (m *Member) Members() ([]MemberStatus, error) {
	f := m.raft.GetConfiguration()
	if err := m.wait(f); err != nil {
		return nil, fmt.Errorf("read the group's configuration: %w", err)
	}
	var out []MemberStatus
	for _, s := range f.Configuration().Servers {
		ms := MemberStatus{ID: s.ID, Address: s.Address, Voter: s.Suffrage == raft.Voter}
		if s.ID == m.id {
			ms.Self, ms.Status = true, m.Status()
		} else if m.forward == nil {
			ms.Role, ms.Error = "unknown", "no transport to ask it"
		} else if st, err := m.forward.status(s.Address); err != nil {
			ms.Role, ms.Error = "unreachable", err.Error()
		} else {
			ms.Status = st
		}
		out = append(out, ms)
	}
	return out, nil
}

// status asks the member at addr for its Status.
func (t *Transport) status(addr raft.ServerAddress) (Status, error) {
	var st Status
	r, err := t.roundTrip(addr, []byte{statusFrame})
	if err != nil {
		return st, err
	}
	if r.Error != "" {
		return st, errors.New(r.Error)
	}
	if err := json.Unmarshal(r.Value, &st); err != nil {
		return st, fmt.Errorf("status of %s: %w", addr, err)
	}
	return st, nil
}

// statusWalk bounds how many entries past the state machine's last
// command appliedToStore reads: a status is asked for often, and entries
// that are not commands come one or two at a time (a leader's no-op, a
// change of members).
const statusWalk = 64

// appliedToStore is the last index whose effect the member's store holds.
// Raft's own applied index counts the entries it has handed to the state
// machine, which applies them after: a member that has just restored a
// snapshot is a hundred entries behind it while it says it is not. The
// store holds everything up to the state machine's last command or the
// newest snapshot (taken or restored there), whichever is later; past it,
// entries that are not commands (no-ops, changes of members) change no
// store, so they count as applied once Raft has applied them.
func (m *Member) appliedToStore(snapshot, raftApplied uint64) uint64 {
	i := max(m.fsm.Applied(), snapshot)
	for n := 0; i < raftApplied && n < statusWalk; n++ {
		var l raft.Log
		if err := m.logs.GetLog(i+1, &l); err != nil || l.Type == raft.LogCommand {
			break
		}
		i++
	}
	return min(i, max(raftApplied, m.fsm.Applied()))
}

// Status returns the member's role, term, indexes and leader.
func (m *Member) Status() Status {
	st := m.raft.Stats()
	num := func(k string) uint64 {
		n, _ := strconv.ParseUint(st[k], 10, 64)
		return n
	}
	s := Status{
		Role:     strings.ToLower(m.raft.State().String()),
		Term:     num("term"),
		Commit:   num("commit_index"),
		Snapshot: num("last_snapshot_index"),
		Restores: m.fsm.Restores(),
	}
	s.Applied = m.appliedToStore(s.Snapshot, m.raft.AppliedIndex())
	if s.Commit > s.Applied {
		s.Lag = s.Commit - s.Applied
	}
	_, s.Leader = m.raft.LeaderWithID()
	return s
}
