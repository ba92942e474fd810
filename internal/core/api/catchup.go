package api

// caughtUp runs h once this core has applied every write its group had
// acknowledged (Config.CatchUp): h checks its precondition (the record
// exists, at the version the caller names) on the local store, which on
// a group's follower trails the leader by a moment. A core alone, or a
// core that cannot catch up, answers as CatchUp says (a group without a
// leader: 503).
func (s *Server) caughtUp(h handler) handler {
	return func(c *call) error {
		if s.cfg.CatchUp != nil {
			if err := s.cfg.CatchUp(c.r.Context()); err != nil {
				return err
			}
		}
		return h(c)
	}
}

// catchUpToAnswer catches this core up with its group before the answer
// to a refused write reads the store: the write that refused it (another
// create that took the name) may be committed but not yet applied here,
// and the store would say the caller cannot see that record (404, "not
// available") where it is a conflict the caller can see (409). A core
// that cannot catch up answers from the store as it is.
func (s *Server) catchUpToAnswer(c *call) {
	if s.cfg.CatchUp == nil {
		return
	}
	if err := s.cfg.CatchUp(c.r.Context()); err != nil {
		s.log.Debug("answering a refused write without catching up with the group", "err", err)
	}
}
