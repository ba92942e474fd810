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
