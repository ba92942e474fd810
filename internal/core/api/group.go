package api

import (
	"errors"
	"net/http"
)

// ErrNoGroupMember answers the removal of a member the group does not
// have (404).
var ErrNoGroupMember = errors.New("the core group has no member of this ID")

// GroupMember is one core of the core group this core belongs to, as GET
// /v1/admin/group shows it: its ID and address from the group's
// configuration and the status it reports (Error says why it could not
// be asked).
type GroupMember struct {
	ID           string `json:"id"`
	Address      string `json:"address"`
	Voter        bool   `json:"voter"`
	Self         bool   `json:"self"`
	Role         string `json:"role"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	Lag          uint64 `json:"lag"`
	// SnapshotIndex is the member's newest snapshot; Restores counts the
	// snapshots it restored since it started (one taken from the leader
	// when it joined or fell behind the leader's kept log).
	SnapshotIndex uint64 `json:"snapshot_index"`
	Restores      int64  `json:"restores"`
	Leader        string `json:"leader"`
	Error         string `json:"error,omitempty"`
}

// groupView is GET /v1/admin/group: no members for a single core.
type groupView struct {
	Members []GroupMember `json:"members"`
}

func (s *Server) groupStatus(c *call) error {
	out := groupView{Members: []GroupMember{}}
	if s.cfg.Group != nil {
		ms, err := s.cfg.Group()
		if err != nil {
			return err
		}
		out.Members = append(out.Members, ms...)
	}
	return reply(c, http.StatusOK, out)
}

func (s *Server) removeGroupMember(c *call) error {
	id := c.ps.ByName("id")
	if s.cfg.GroupRemove == nil {
		return errorf(http.StatusNotFound, "Not Found: this core is not a member of a core group")
	}
	err := s.cfg.GroupRemove(id)
	if errors.Is(err, ErrNoGroupMember) {
		return errorf(http.StatusNotFound, "Not Found: the core group has no member %q; list them with GET /v1/admin/group", id)
	}
	if err != nil {
		return err
	}
	s.log.Info("core group: member removed by request", "id", id, "subject", c.subject.Name)
	return reply(c, http.StatusOK, map[string]string{"id": id})
}
