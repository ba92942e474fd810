package replication

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Catching up: a member applies the leader's commits a moment after the
// leader acknowledged them, so a write's precondition checked on its own
// store (the function to update exists, at the version the caller saw)
// could answer 404 or 409 for what the group holds. Before such a check
// the member asks the leader for a read index, an index every write
// acknowledged so far is at or below, and waits until it has applied up
// to it. Why: docs/RATIONALE.md, "Why a replicated core uses Raft".

// readIndexFrame starts a forwarded frame that asks the leader for its
// read index.
const readIndexFrame = 0xF3

// catchUpPoll is how often a member waiting to catch up checks its
// applied index: Raft tells no one when it applies an entry.
const catchUpPoll = 2 * time.Millisecond

// CatchUp returns once this member has applied every entry the group had
// committed when it was called (ErrNoLeader if no leader answers, the
// context's error if it ends first). A leader confirms its lead with a
// barrier entry, which also applies what an earlier leader committed.
func (m *Member) CatchUp(ctx context.Context) error {
	idx, err := m.readIndex()
	if err != nil {
		return m.AsUnavailable(err)
	}
	deadline := time.NewTimer(applyTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(catchUpPoll)
	defer tick.Stop()
	for m.fsm.Applied() < idx {
		select {
		case <-ctx.Done():
			return fmt.Errorf("catch up with the group: %w", ctx.Err())
		case <-m.closed:
			return fmt.Errorf("catch up with the group: %w", ErrNoLeader)
		case <-deadline.C:
			return m.AsUnavailable(fmt.Errorf("catch up with the group: applied %d of %d: %w", m.fsm.Applied(), idx, ErrNoLeader))
		case <-tick.C:
		}
	}
	return nil
}

// readIndex is the leader's read index: its own if this member leads,
// else asked of the leader (a few times, as the lead may move).
func (m *Member) readIndex() (uint64, error) {
	if m.raft.State() == raft.Leader {
		idx, err := m.leaderReadIndex()
		if !errors.Is(err, ErrNotLeader) {
			return idx, err
		}
	}
	if m.forward == nil {
		return 0, fmt.Errorf("read index: %w (no transport to ask the leader)", ErrNotLeader)
	}
	var err error
	for range forwardTries {
		addr, _ := m.raft.LeaderWithID()
		if addr == "" {
			return 0, fmt.Errorf("read index: %w", ErrNoLeader)
		}
		var idx uint64
		if idx, err = m.forward.readIndex(addr); !errors.Is(err, ErrNotLeader) {
			return idx, err
		}
	}
	return 0, err
}

// leaderReadIndex commits a barrier entry and returns the index of the
// last command its state machine applied then: every command committed
// before, whichever leader committed it, is at or below it. It is the
// FSM's index, not Raft's applied index, which a follower advances when
// it hands entries to its FSM, before the FSM applied them. It fails with
// ErrNotLeader where the member does not lead.
func (m *Member) leaderReadIndex() (uint64, error) {
	if m.raft.State() != raft.Leader {
		return 0, fmt.Errorf("read index: %w", ErrNotLeader)
	}
	if err := m.wait(m.raft.Barrier(applyTimeout)); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return 0, fmt.Errorf("read index: %w", ErrNotLeader)
		}
		return 0, fmt.Errorf("read index: %w", err)
	}
	return m.fsm.Applied(), nil
}

// readIndex asks the member at addr for its read index.
func (t *Transport) readIndex(addr raft.ServerAddress) (uint64, error) {
	r, err := t.roundTrip(addr, []byte{readIndexFrame})
	if err != nil {
		// Nothing is written: whether the frame was answered or not, the
		// caller may ask again.
		return 0, fmt.Errorf("read index of %s: %w", addr, ErrNotLeader)
	}
	if r.Error != "" {
		return 0, remoteError{msg: r.Error, kind: errorKinds[r.Kind]}
	}
	var idx uint64
	if err := json.Unmarshal(r.Value, &idx); err != nil {
		return 0, fmt.Errorf("read index of %s: %w", addr, err)
	}
	return idx, nil
}
