package api

import (
	"io"
	"net/http"
)

func (s *Server) root(c *call) error {
	c.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(c.w, "edgefaas is up and running\n")
	return nil
}

func (s *Server) healthz(c *call) error {
	c.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(c.w, "ok\n")
	return nil
}

func (s *Server) readyz(c *call) error {
	select {
	case <-s.stopping:
		return errorf(http.StatusServiceUnavailable, "Not ready: the core is shutting down")
	default:
	}
	// O(1): /readyz is public, so it must not scan the store (Stats does).
	if err := s.cfg.Store.Probe(); err != nil {
		return errorf(http.StatusServiceUnavailable, "Not ready: storage is not readable: %v", err)
	}
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			return errorf(http.StatusServiceUnavailable, "Not ready: %v", err)
		}
	}
	c.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(c.w, "ready\n")
	return nil
}
