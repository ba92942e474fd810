package api

import "net/http"

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
	Leader       string `json:"leader"`
	Error        string `json:"error,omitempty"`
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
