package api

import (
	"errors"
	"net/http"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// Per-subject egress bounds (admin): the hosts the operator permits one
// subject's functions to grant themselves, and callbacks or sinks sent on
// its behalf to reach. The core applies them per call (nodes.Core.Invoke,
// egress.Bound), so a change takes effect at the next invocation.

type egressView struct {
	Subject string   `json:"subject"`
	Hosts   []string `json:"hosts"`
	// Bounded is false when no bound is set: the node-wide --egress-allow
	// alone bounds the subject's grants.
	Bounded bool `json:"bounded"`
}

func (s *Server) subjectOr404(name string) error {
	_, err := s.cfg.Store.GetSubject(name)
	if errors.Is(err, storage.ErrNotFound) {
		return errorf(http.StatusNotFound, "Not Found: subject %q does not exist", name)
	}
	return err
}

func (s *Server) getSubjectEgress(c *call) error {
	name := c.ps.ByName("name")
	if err := s.subjectOr404(name); err != nil {
		return err
	}
	hosts, set, err := s.cfg.Store.SubjectEgress(name)
	if err != nil {
		return err
	}
	if hosts == nil {
		hosts = []string{}
	}
	return reply(c, http.StatusOK, egressView{Subject: name, Hosts: hosts, Bounded: set})
}

func (s *Server) setSubjectEgress(c *call) error {
	name := c.ps.ByName("name")
	if err := s.subjectOr404(name); err != nil {
		return err
	}
	var body struct {
		Hosts *[]string `json:"hosts"`
	}
	if err := readJSON(c, &body, "request body"); err != nil {
		return err
	}
	if body.Hosts == nil {
		return errorf(http.StatusBadRequest, `Bad Request: expected {"hosts":["host","host:port","*.domain","*"]} (an empty list permits nothing)`)
	}
	if len(*body.Hosts) > maxAllowedHosts {
		return errorf(http.StatusBadRequest, "Bad Request: hosts has %d entries, the limit is %d", len(*body.Hosts), maxAllowedHosts)
	}
	for _, h := range *body.Hosts {
		if err := checkHost(h); err != nil {
			return errorf(http.StatusBadRequest, "Bad Request: hosts: %v", err)
		}
	}
	if err := s.writes.SetSubjectEgress(name, *body.Hosts); err != nil {
		return err
	}
	s.log.Info("subject egress bound set", "subject", name, "hosts", *body.Hosts, "by", c.subject.Name)
	return reply(c, http.StatusOK, egressView{Subject: name, Hosts: *body.Hosts, Bounded: true})
}

func (s *Server) clearSubjectEgress(c *call) error {
	name := c.ps.ByName("name")
	if err := s.subjectOr404(name); err != nil {
		return err
	}
	if err := s.writes.ClearSubjectEgress(name); err != nil {
		return err
	}
	s.log.Info("subject egress bound cleared", "subject", name, "by", c.subject.Name)
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}
