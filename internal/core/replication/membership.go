package replication

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Membership: a new core asks any member of the group, over the group's
// transport, to add it; the member adds it as a voter if it leads, else
// passes the request to the leader. The leader then sends the new member
// a snapshot or the log.

// joinFrame starts a forwarded frame that asks to join rather than write:
// no command's op has this value.
const joinFrame = 0xF0

// joinRequest names the member that asks to join and where it listens.
type joinRequest struct {
	ID      raft.ServerID      `json:"id"`
	Address raft.ServerAddress `json:"address"`
}

// AddMember adds a voting member to the group: on the leader, through
// Raft's configuration change; elsewhere, asked of the leader.
func (m *Member) AddMember(id raft.ServerID, addr raft.ServerAddress) error {
	if m.raft.State() == raft.Leader {
		if err := m.wait(m.raft.AddVoter(id, addr, 0, applyTimeout)); err != nil {
			if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
				return fmt.Errorf("add member %s: %w", id, ErrNotLeader)
			}
			return fmt.Errorf("add member %s at %s: %w", id, addr, err)
		}
		return nil
	}
	if m.forward == nil {
		return fmt.Errorf("add member %s: %w (no transport to forward it)", id, ErrNotLeader)
	}
	leader, _ := m.raft.LeaderWithID()
	if leader == "" {
		return fmt.Errorf("add member %s: %w", id, ErrNoLeader)
	}
	return m.forward.Join(leader, id, addr)
}

// ErrNoMember means the group's configuration holds no member of that ID.
var ErrNoMember = errors.New("no member of the group has this ID")

// RemoveMember removes a member from the group: on the leader, through
// Raft's configuration change; elsewhere, asked of the leader.
// ErrNoMember if the group has no such member.
func (m *Member) RemoveMember(id raft.ServerID) error {
	if m.raft.State() == raft.Leader {
		f := m.raft.GetConfiguration()
		if err := m.wait(f); err != nil {
			return fmt.Errorf("remove member %s: %w", id, err)
		}
		found := false
		for _, s := range f.Configuration().Servers {
			found = found || s.ID == id
		}
		if !found {
			return fmt.Errorf("remove member %s: %w", id, ErrNoMember)
		}
		if err := m.wait(m.raft.RemoveServer(id, 0, applyTimeout)); err != nil {
			if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
				return fmt.Errorf("remove member %s: %w", id, ErrNotLeader)
			}
			return fmt.Errorf("remove member %s: %w", id, err)
		}
		return nil
	}
	if m.forward == nil {
		return fmt.Errorf("remove member %s: %w (no transport to forward it)", id, ErrNotLeader)
	}
	leader, _ := m.raft.LeaderWithID()
	if leader == "" {
		return fmt.Errorf("remove member %s: %w", id, ErrNoLeader)
	}
	body, err := json.Marshal(joinRequest{ID: id})
	if err != nil {
		return err
	}
	return m.forward.request(leader, append([]byte{removeFrame}, body...))
}

// removeFrame starts a forwarded frame that asks the leader to remove a
// member.
const removeFrame = 0xF2

// answerRemove takes a forwarded request to remove a member.
func (m *Member) answerRemove(body []byte) error {
	var j joinRequest
	if err := json.Unmarshal(body, &j); err != nil || j.ID == "" {
		return fmt.Errorf("remove request: %w", errBadCommand)
	}
	return m.RemoveMember(j.ID)
}

// answerJoin takes a forwarded request to join.
func (m *Member) answerJoin(body []byte) error {
	var j joinRequest
	if err := json.Unmarshal(body, &j); err != nil || j.ID == "" || j.Address == "" {
		return fmt.Errorf("join request: %w", errBadCommand)
	}
	return m.AddMember(j.ID, j.Address)
}

// Join asks the member at target to add the member id, listening at addr,
// to its group. The asking member need not belong to the group yet: it
// only needs the group's credentials.
func (t *Transport) Join(target raft.ServerAddress, id raft.ServerID, addr raft.ServerAddress) error {
	body, err := json.Marshal(joinRequest{ID: id, Address: addr})
	if err != nil {
		return err
	}
	return t.request(target, append([]byte{joinFrame}, body...))
}

// request sends a frame that answers no value to the member at addr.
func (t *Transport) request(addr raft.ServerAddress, frame []byte) error {
	r, err := t.roundTrip(addr, frame)
	if err != nil {
		return err
	}
	if r.Error != "" {
		return remoteError{msg: r.Error, kind: errorKinds[r.Kind]}
	}
	return nil
}

// JoinRetry is how long a member waits between requests to join while
// the group has no leader or cannot be reached.
const JoinRetry = time.Second
