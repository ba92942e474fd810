package api

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/version"
)

func (s *Server) listNodes(c *call) error {
	out := []cluster.NodeInfo{}
	if s.cfg.Nodes != nil {
		out = append(out, s.cfg.Nodes.NodeList()...)
	}
	return reply(c, http.StatusOK, out)
}

func (s *Server) connectNode(c *call) error {
	var body struct {
		Node *struct {
			Address string `json:"address"`
		} `json:"node"`
	}
	if err := readJSON(c, &body, "request body"); err != nil {
		return err
	}
	if body.Node == nil || body.Node.Address == "" {
		return errorf(http.StatusBadRequest, `Bad Request: expected {"node":{"address":"NAME@HOST:PORT"}}`)
	}
	if s.cfg.Nodes == nil {
		return errorf(http.StatusServiceUnavailable, "Service Unavailable: this core runs without a cluster")
	}
	if err := s.cfg.Nodes.Connect(body.Node.Address); err != nil {
		return errorf(http.StatusBadGateway, "Bad Gateway: connect to %s: %s", body.Node.Address, err.Error())
	}
	s.log.Info("worker attached by request", "address", body.Node.Address, "subject", c.subject.Name)
	return reply(c, http.StatusOK, map[string]string{"address": body.Node.Address})
}

func (s *Server) authority() (cluster.NodeAuthority, error) {
	if a, ok := s.cfg.Nodes.(cluster.NodeAuthority); ok && a != nil && a.Issuing() {
		return a, nil
	}
	return nil, errorf(http.StatusConflict, "Conflict: %v", cluster.ErrNoAuthority)
}

// maxJoinTokenTTL bounds a join token's life.
const maxJoinTokenTTL = 30 * 24 * time.Hour

func (s *Server) createJoinToken(c *call) error {
	raw, err := readBody(c, maxJSONBodyBytes)
	if err != nil {
		return err
	}
	body := struct {
		TTLSeconds int    `json:"ttl_seconds"`
		Node       string `json:"node"`
	}{}
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := decodeStrict(raw, &body, "request body"); err != nil {
			return err
		}
	}
	ttl := time.Duration(body.TTLSeconds) * time.Second
	switch {
	case body.TTLSeconds == 0:
		ttl = time.Hour
	case body.TTLSeconds < 0 || ttl > maxJoinTokenTTL:
		return errorf(http.StatusBadRequest, "Bad Request: ttl_seconds must be between 1 and %d", int(maxJoinTokenTTL/time.Second))
	}
	if _, err := s.authority(); err != nil {
		return err
	}
	var tokens storage.NodeRecords = s.cfg.Store
	if r, ok := s.writes.(storage.NodeRecords); ok { // a core group's log
		tokens = r
	}
	token, jt, err := tokens.CreateJoinToken(body.Node, ttl)
	var unavailable Unavailable
	if errors.As(err, &unavailable) {
		return err
	}
	if err != nil {
		return errorf(http.StatusBadRequest, "Bad Request: %v", err)
	}
	// The API's certificate fingerprint rides in the token, so the worker
	// pins the core's HTTPS certificate with no extra flag.
	if fp := s.fingerprint.Load(); fp != nil && *fp != "" {
		token += "." + *fp
	}
	s.log.Info("join token created", "node", jt.Node, "expires_at", jt.ExpiresAt, "by", c.subject.Name)
	return reply(c, http.StatusCreated, map[string]any{"token": token, "node": jt.Node, "expires_at": jt.ExpiresAt})
}

func (s *Server) joinNode(c *call) error {
	var body struct {
		Token string `json:"token"`
		Node  string `json:"node"`
		CSR   []byte `json:"csr"`
		// Version is the worker's (absent from older workers: then its
		// first report is checked instead).
		Version string `json:"version"`
	}
	if err := readJSON(c, &body, "request body"); err != nil {
		s.holdStranger(c.r.Context())
		return err
	}
	a, err := s.authority()
	if err != nil {
		return err
	}
	if body.Token == "" || body.Node == "" || len(body.CSR) == 0 {
		s.holdStranger(c.r.Context())
		return errorf(http.StatusBadRequest, `Bad Request: expected {"token":"...","node":"worker@HOST","csr":"<base64 DER>"}`)
	}
	if body.Version != "" {
		// Refused before the token is spent: the operator upgrades the
		// worker and joins with the same token.
		if err := version.Compatible(version.Get().Version, body.Version); err != nil {
			s.log.Warn("node join refused", "node", body.Node, "remote", c.r.RemoteAddr, "err", err)
			return errorf(http.StatusConflict, "Conflict: %v", err)
		}
	}
	secret, _, _ := strings.Cut(body.Token, ".") // TOKEN.FINGERPRINT: the fingerprint is the worker's pin
	enr, err := a.Enroll(secret, body.Node, body.CSR)
	if errors.Is(err, cluster.ErrNoAuthority) {
		return errorf(http.StatusConflict, "Conflict: %v", err)
	}
	if errors.Is(err, cluster.ErrJoinRefused) {
		if ok, suppressed := s.refusalLog.allow(); ok {
			s.log.Warn("node join refused", "node", body.Node, "remote", c.r.RemoteAddr, "err", err, "suppressed", suppressed)
		}
		s.holdStranger(c.r.Context())
		return errorf(http.StatusUnauthorized, "Unauthorized: %v", err)
	}
	if err != nil {
		return err
	}
	s.log.Info("node joined with a token", "node", body.Node, "serial", enr.Serial, "remote", c.r.RemoteAddr)
	return reply(c, http.StatusOK, enr)
}

func (s *Server) nodeAdmin(op string) func(c *call) error {
	return func(c *call) error {
		a, err := s.authority()
		if err != nil {
			return err
		}
		name := c.ps.ByName("name")
		out := map[string]string{"node": name}
		switch op {
		case "revoke":
			err = a.RevokeNode(name)
		case "rotate":
			out["serial"], err = a.RotateNode(name)
		}
		if errors.Is(err, cluster.ErrNoAuthority) {
			return errorf(http.StatusConflict, "Conflict: %v", err)
		}
		if errors.Is(err, cluster.ErrNodeUnknown) {
			return errorf(http.StatusNotFound, "Not Found: %v: %q", cluster.ErrNodeUnknown, name)
		}
		if err != nil {
			return errorf(http.StatusConflict, "Conflict: %s %s: %v", op, name, err)
		}
		s.log.Info("node "+op+"d", "node", name, "by", c.subject.Name)
		return reply(c, http.StatusOK, out)
	}
}

// nodeCertView is a token-joined node as GET /v1/admin/node-certificates shows it.
type nodeCertView struct {
	Node      string     `json:"node"`
	Serial    string     `json:"serial"`
	Rotating  bool       `json:"rotating"` // the previous certificate is still accepted
	IssuedAt  time.Time  `json:"issued_at"`
	Revoked   bool       `json:"revoked"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

func (s *Server) listNodeCerts(c *call) error {
	ncs, err := s.cfg.Store.ListNodeCerts()
	if err != nil {
		return err
	}
	out := make([]nodeCertView, 0, len(ncs))
	for _, nc := range ncs {
		v := nodeCertView{Node: nc.Name, Serial: nc.Serial, Rotating: nc.Previous != "", IssuedAt: nc.IssuedAt, Revoked: nc.Revoked}
		if nc.Revoked {
			at := nc.RevokedAt
			v.RevokedAt = &at
		}
		out = append(out, v)
	}
	return reply(c, http.StatusOK, out)
}
