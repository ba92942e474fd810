package storage

import (
	"errors"
	"fmt"
	"time"
)

// Node credentials (docs/RATIONALE.md#why-the-node-ca-join-tokens-and-egress-bounds): one-time join tokens and the certificate
// each token-joined node holds, kept with the core's other state so a
// revocation survives restarts and kill -9 like any acknowledged write.
//
//	j/<sha256 of token> → JoinToken: unused, unexpired join tokens
//	n/<node name>       → NodeCert: the node's current certificate serial,
//	                      the previous one during a rotation, revocation

// ErrTokenInvalid is a join token that is unknown, already used or expired.
var ErrTokenInvalid = errors.New("join token unknown, already used or expired")

// JoinToken is a one-time credential a worker exchanges for a certificate.
// Only its sha256 is stored.
type JoinToken struct {
	// Node, if set, is the only node name the token may enroll.
	Node      string    `json:"node,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// NodeCert is what the core knows of a token-joined node's certificate.
type NodeCert struct {
	Name string `json:"name"`
	// Serial is the hex serial of the certificate the node must present.
	Serial string `json:"serial"`
	// Previous is the serial before a rotation, accepted until the node
	// first connects with the new one.
	Previous  string    `json:"previous,omitempty"`
	IssuedAt  time.Time `json:"issued_at"`
	Revoked   bool      `json:"revoked,omitempty"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// CreateJoinToken issues a one-time join token valid for ttl, optionally
// restricted to node name node. The token is returned once; only its
// sha256 is stored.
func (s *Store) CreateJoinToken(node string, ttl time.Duration) (string, JoinToken, error) {
	if node != "" {
		if err := CheckNodeName(node); err != nil {
			return "", JoinToken{}, err
		}
	}
	token, hash, err := NewToken()
	if err != nil {
		return "", JoinToken{}, err
	}
	now := s.now()
	jt := JoinToken{Node: node, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.setJSON(b, keyJoinToken(hash), jt); err != nil {
		return "", JoinToken{}, err
	}
	return token, jt, s.commit(b)
}

// ConsumeJoinToken spends token if accept, given the token's record,
// returns nil: the token is deleted in a synced batch before the caller
// issues anything, so it can never be used twice, even across a crash.
// Unknown, used or expired tokens give ErrTokenInvalid before accept is
// called, so whatever accept costs is spent only for a valid token's
// holder; what accept refuses leaves the token unspent, with accept's
// error. An expired token is deleted.
func (s *Store) ConsumeJoinToken(token string, accept func(JoinToken) error) (JoinToken, error) {
	if token == "" {
		return JoinToken{}, ErrTokenInvalid
	}
	hash := hashToken(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	var jt JoinToken
	if err := s.getJSON(keyJoinToken(hash), &jt); errors.Is(err, ErrNotFound) {
		return JoinToken{}, ErrTokenInvalid
	} else if err != nil {
		return JoinToken{}, err
	}
	expired := !s.now().Before(jt.ExpiresAt)
	if !expired && accept != nil {
		if err := accept(jt); err != nil {
			return JoinToken{}, err
		}
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Delete(keyJoinToken(hash), nil); err != nil {
		return JoinToken{}, err
	}
	if err := s.commit(b); err != nil {
		return JoinToken{}, err
	}
	if expired {
		return JoinToken{}, fmt.Errorf("%w (expired at %s)", ErrTokenInvalid, jt.ExpiresAt.Format(time.RFC3339))
	}
	return jt, nil
}

// GetNodeCert returns the record of a token-joined node, or ErrNotFound.
func (s *Store) GetNodeCert(name string) (NodeCert, error) {
	var nc NodeCert
	if err := s.getJSON(keyNodeCert(name), &nc); err != nil {
		return NodeCert{}, err
	}
	return nc, nil
}

// ListNodeCerts returns every token-joined node's record.
func (s *Store) ListNodeCerts() ([]NodeCert, error) {
	return listJSON[NodeCert](s, prefixNodeCerts)
}

// UpdateNodeCert applies change to name's record (a zero record if there
// is none: create reports it) and commits it synced.
func (s *Store) UpdateNodeCert(name string, change func(nc *NodeCert, create bool) error) (NodeCert, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	nc, err := s.GetNodeCert(name)
	create := errors.Is(err, ErrNotFound)
	if err != nil && !create {
		return NodeCert{}, err
	}
	nc.Name = name
	if err := change(&nc, create); err != nil {
		return NodeCert{}, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.setJSON(b, keyNodeCert(name), nc); err != nil {
		return NodeCert{}, err
	}
	return nc, s.commit(b)
}

// CheckNodeName accepts node names ROLE@HOST: printable, no spaces or
// slashes, at most 255 bytes.
func CheckNodeName(name string) error {
	if name == "" || len(name) > 255 {
		return fmt.Errorf("node name %q: want ROLE@HOST, at most 255 bytes", name)
	}
	for _, r := range name {
		if r <= ' ' || r == '/' || r == 0x7f {
			return fmt.Errorf("node name %q: no spaces, slashes or control characters", name)
		}
	}
	return nil
}
