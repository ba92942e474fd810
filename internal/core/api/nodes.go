package api

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"time"
)

// Nodes is implemented by clusters that can list their workers and attach
// one by address (`edgefaas node list|connect`).
type Nodes interface {
	NodeList() []NodeInfo
	// Connect attaches a worker by node address, "NAME@HOST:PORT".
	Connect(addr string) error
}

// NodeInfo is a worker as GET /v1/nodes shows it.
type NodeInfo struct {
	Name        string   `json:"name"`
	Arch        string   `json:"arch"`
	OS          string   `json:"os"`
	Tags        []string `json:"tags"`
	TotalMemory int      `json:"total_memory"`
	FreeMemory  int      `json:"free_memory"`
	// MemoryBudget is the worker node's whole budget (--memory, else its
	// cgroup limit, else a share of MemAvailable); MemoryInUse its resident
	// set; MemoryReserved what its guests and compiled code hold. Bytes.
	MemoryBudget   int       `json:"memory_budget"`
	MemoryInUse    int       `json:"memory_in_use"`
	MemoryReserved int       `json:"memory_reserved"`
	Load           float64   `json:"load"` // (running + queued) / concurrency limit
	Running        int       `json:"running"`
	Queued         int       `json:"queued"`
	MaxRunning     int       `json:"max_running"`
	Functions      []string  `json:"functions"`   // code hashes compiled there; empty for non-admins
	Invocations    int       `json:"invocations"` // started there since the worker started
	LastReport     time.Time `json:"last_report"`
}

func (s *Server) listNodes(c *call) error {
	out := []NodeInfo{}
	if s.cfg.Nodes != nil {
		out = append(out, s.cfg.Nodes.NodeList()...)
	}
	if !c.subject.Admin {
		// Code hashes tell one tenant which code another runs (identical
		// uploads share a hash): only admins see them.
		for i := range out {
			out[i].Functions = []string{}
		}
	}
	writeJSON(c.w, http.StatusOK, data(out))
	return nil
}

func (s *Server) connectNode(c *call) error {
	raw, err := readBody(c, maxJSONBodyBytes)
	if err != nil {
		return err
	}
	var body struct {
		Node *struct {
			Address string `json:"address"`
		} `json:"node"`
	}
	if err := decodeStrict(raw, &body, "request body"); err != nil {
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
	writeJSON(c.w, http.StatusOK, data(map[string]string{"address": body.Node.Address}))
	return nil
}

// NodeAuthority is implemented by a cluster whose core issues node
// certificates from its own CA (docs/RATIONALE.md#why-the-node-ca-join-tokens-and-egress-bounds): workers join with a one-time
// token, and single workers are rotated or revoked by an admin.
type NodeAuthority interface {
	// Issuing reports whether this core issues certificates at all (not
	// with an operator CA): join tokens are refused otherwise.
	Issuing() bool
	// Enroll spends a join token and signs csr (DER, PKCS #10) for node
	// name; errors wrap ErrJoinRefused when the token or request is refused.
	Enroll(token, name string, csr []byte) (Enrollment, error)
	// RevokeNode refuses name's certificate from now on and drops its link.
	RevokeNode(name string) error
	// RotateNode issues name a new certificate over its live link; the old
	// one is refused once the node connected with the new one.
	RotateNode(name string) (serial string, err error)
}

// Enrollment is what a worker gets for a valid join token.
type Enrollment struct {
	// Certificate is the worker's certificate (PEM), naming it.
	Certificate string `json:"certificate"`
	// CA holds the certificates (PEM) the worker must trust for its cores.
	CA string `json:"ca"`
	// Cookie is the cluster's ergo cookie (the link is authenticated by
	// the certificates; ergo's handshake still needs it).
	Cookie string `json:"cookie"`
	// Serial is the certificate's serial number, hex.
	Serial string `json:"serial"`
}

// Errors a NodeAuthority wraps.
var (
	// ErrJoinRefused: the token is unknown, used or expired, or the request is malformed.
	ErrJoinRefused = errors.New("join refused")
	// ErrNodeUnknown: no token-joined node has that name.
	ErrNodeUnknown = errors.New("no token-joined node has that name")
	// ErrNoAuthority: the core does not issue certificates (an operator CA, or no cluster).
	ErrNoAuthority = errors.New("this core does not issue node certificates (it runs with an operator CA or without a cluster)")
)

func (s *Server) authority() (NodeAuthority, error) {
	if a, ok := s.cfg.Nodes.(NodeAuthority); ok && a != nil && a.Issuing() {
		return a, nil
	}
	return nil, errorf(http.StatusConflict, "Conflict: %v", ErrNoAuthority)
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
	token, jt, err := s.cfg.Store.CreateJoinToken(body.Node, ttl)
	if err != nil {
		return errorf(http.StatusBadRequest, "Bad Request: %v", err)
	}
	// The API's certificate fingerprint rides in the token, so the worker
	// pins the core's HTTPS certificate with no extra flag.
	if fp := s.fingerprint.Load(); fp != nil && *fp != "" {
		token += "." + *fp
	}
	s.log.Info("join token created", "node", jt.Node, "expires_at", jt.ExpiresAt, "by", c.subject.Name)
	writeJSON(c.w, http.StatusCreated, data(map[string]any{"token": token, "node": jt.Node, "expires_at": jt.ExpiresAt}))
	return nil
}

func (s *Server) joinNode(c *call) error {
	raw, err := readBody(c, maxJSONBodyBytes)
	if err != nil {
		return err
	}
	var body struct {
		Token string `json:"token"`
		Node  string `json:"node"`
		CSR   []byte `json:"csr"`
	}
	if err := decodeStrict(raw, &body, "request body"); err != nil {
		return err
	}
	a, err := s.authority()
	if err != nil {
		return err
	}
	if body.Token == "" || body.Node == "" || len(body.CSR) == 0 {
		return errorf(http.StatusBadRequest, `Bad Request: expected {"token":"...","node":"worker@HOST","csr":"<base64 DER>"}`)
	}
	secret, _, _ := strings.Cut(body.Token, ".") // TOKEN.FINGERPRINT: the fingerprint is the worker's pin
	enr, err := a.Enroll(secret, body.Node, body.CSR)
	if errors.Is(err, ErrNoAuthority) {
		return errorf(http.StatusConflict, "Conflict: %v", err)
	}
	if errors.Is(err, ErrJoinRefused) {
		if ok, suppressed := s.refusalLog.allow(); ok {
			s.log.Warn("node join refused", "node", body.Node, "remote", c.r.RemoteAddr, "err", err, "suppressed", suppressed)
		}
		return errorf(http.StatusUnauthorized, "Unauthorized: %v", err)
	}
	if err != nil {
		return err
	}
	s.log.Info("node joined with a token", "node", body.Node, "serial", enr.Serial, "remote", c.r.RemoteAddr)
	writeJSON(c.w, http.StatusOK, data(enr))
	return nil
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
		if errors.Is(err, ErrNoAuthority) {
			return errorf(http.StatusConflict, "Conflict: %v", err)
		}
		if errors.Is(err, ErrNodeUnknown) {
			return errorf(http.StatusNotFound, "Not Found: %v: %q", ErrNodeUnknown, name)
		}
		if err != nil {
			return errorf(http.StatusConflict, "Conflict: %s %s: %v", op, name, err)
		}
		s.log.Info("node "+op+"d", "node", name, "by", c.subject.Name)
		writeJSON(c.w, http.StatusOK, data(out))
		return nil
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
	writeJSON(c.w, http.StatusOK, data(out))
	return nil
}
