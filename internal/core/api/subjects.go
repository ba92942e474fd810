package api

import (
	"errors"
	"net/http"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

type subjectView struct {
	Name    string `json:"name"`
	Admin   bool   `json:"admin"`
	Revoked bool   `json:"revoked"`
}

type tokenView struct {
	Name  string `json:"name"`
	Token string `json:"token"`
}

func (s *Server) listSubjects(c *call) error {
	subs, err := s.cfg.Store.ListSubjects()
	if err != nil {
		return err
	}
	out := make([]subjectView, 0, len(subs))
	for _, sub := range subs {
		out = append(out, subjectView{Name: sub.Name, Admin: sub.Admin, Revoked: sub.Revoked()})
	}
	return reply(c, http.StatusOK, out)
}

func (s *Server) createSubject(c *call) error {
	name, err := readNamed(c, "subject")
	if err != nil {
		return err
	}
	token, err := s.writes.CreateSubject(name, false)
	if errors.Is(err, storage.ErrExists) {
		return errorf(http.StatusConflict, "Conflict: subject %q already exists; rotate its token with PUT /v1/admin/subjects/%s", name, name)
	}
	if err != nil {
		return err
	}
	return reply(c, http.StatusCreated, tokenView{Name: name, Token: token})
}

func (s *Server) rotateSubject(c *call) error {
	name := c.ps.ByName("name")
	token, err := s.writes.RotateToken(name)
	if errors.Is(err, storage.ErrNotFound) {
		return errorf(http.StatusNotFound, "Not Found: subject %q does not exist", name)
	}
	if err != nil {
		return err
	}
	s.subjectChanged(name) // a revoked subject's triggers start again
	return reply(c, http.StatusOK, tokenView{Name: name, Token: token})
}

func (s *Server) revokeSubject(c *call) error {
	name := c.ps.ByName("name")
	err := s.writes.RevokeToken(name)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return errorf(http.StatusNotFound, "Not Found: subject %q does not exist", name)
	case errors.Is(err, storage.ErrAdminRevoke):
		return errorf(http.StatusBadRequest, "Bad Request: subject %q is an admin; its token cannot be revoked, rotate it with PUT /v1/admin/subjects/%s", name, name)
	case err != nil:
		return err
	}
	// Nothing more runs on its behalf: its triggers stop and its queued
	// calls end. Best effort after the commit: a call the cancel misses
	// is refused when it would run, a trigger when it would queue one.
	s.subjectChanged(name)
	n, err := s.inv.CancelSubject(name)
	if err != nil {
		s.log.Error("revoke: cancel the subject's queued calls; they end when they would run", "subject", name, "err", err)
	}
	s.log.Info("subject revoked", "subject", name, "calls_canceled", n)
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// subjectChanged tells the triggers that subject's token changed.
func (s *Server) subjectChanged(name string) {
	if s.cfg.Triggers == nil {
		return
	}
	if err := s.cfg.Triggers.SubjectChanged(name); err != nil {
		s.log.Error("apply a subject's change to its triggers", "subject", name, "err", err)
	}
}
