package api

import (
	"net/http"

	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// Triggers runs functions' events (package triggers' Manager): the API
// checks new events against it and tells it every committed change.
type Triggers interface {
	// Check refuses events of owner's function that the operator's
	// policy or the broker's topic ACL does not permit; its error names
	// the bad field (answered 400).
	Check(owner string, events []storage.Event) error
	// FunctionChanged applies a committed create, update or delete.
	FunctionChanged(ev cluster.FunctionEvent)
	// SubjectChanged applies a committed revocation or new token of a
	// subject to the triggers of the functions it owns.
	SubjectChanged(subject string) error
}

// checkEvents answers 400 for events the trigger runtime refuses.
func (s *Server) checkEvents(owner string, events []storage.Event) error {
	if err := s.checkCronPeriods(owner, events); err != nil {
		return err
	}
	if s.cfg.Triggers == nil || len(events) == 0 {
		return nil
	}
	if err := s.cfg.Triggers.Check(owner, events); err != nil {
		return errorf(http.StatusBadRequest, "Bad Request: %v", err)
	}
	return nil
}
