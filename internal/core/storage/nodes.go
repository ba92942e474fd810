package storage

import (
	"bytes"
	"encoding/json"
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
	jt, err := s.GetJoinToken(hash)
	if err != nil {
		return JoinToken{}, err
	}
	expired := !s.now().Before(jt.ExpiresAt)
	if !expired && accept != nil {
		if err := accept(jt); err != nil {
			return JoinToken{}, err
		}
	}
	if err := s.deleteJoinToken(hash); err != nil {
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

// JoinTokenHash is the key a join token's record is kept under: a core
// group's log carries it, never the token.
func JoinTokenHash(token string) string { return hashToken(token) }

// NewJoinToken makes a join token valid for ttl from now, optionally
// restricted to node name node, without storing it: the caller stores
// its record under its hash (PutJoinToken) on every member.
func (s *Store) NewJoinToken(node string, ttl time.Duration) (token, hash string, jt JoinToken, err error) {
	if node != "" {
		if err := CheckNodeName(node); err != nil {
			return "", "", JoinToken{}, err
		}
	}
	token, hash, err = NewToken()
	if err != nil {
		return "", "", JoinToken{}, err
	}
	now := s.now()
	return token, hash, JoinToken{Node: node, CreatedAt: now, ExpiresAt: now.Add(ttl)}, nil
}

// PutJoinToken stores a join token's record under its hash.
func (s *Store) PutJoinToken(hash string, jt JoinToken) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.setJSON(b, keyJoinToken(hash), jt); err != nil {
		return err
	}
	return s.commit(b)
}

// GetJoinToken returns the record of the unspent token whose hash is
// hash, ErrTokenInvalid if there is none.
func (s *Store) GetJoinToken(hash string) (JoinToken, error) {
	var jt JoinToken
	if err := s.getJSON(keyJoinToken(hash), &jt); errors.Is(err, ErrNotFound) {
		return JoinToken{}, ErrTokenInvalid
	} else if err != nil {
		return JoinToken{}, err
	}
	return jt, nil
}

// SpendJoinToken deletes the token whose hash is hash and returns its
// record; ErrTokenInvalid if it is gone (spent meanwhile through another
// core of the group). Its expiry was checked by the caller, who read it.
func (s *Store) SpendJoinToken(hash string) (JoinToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	jt, err := s.GetJoinToken(hash)
	if err != nil {
		return JoinToken{}, err
	}
	return jt, s.deleteJoinToken(hash)
}

// deleteJoinToken deletes a token's record, synced; s.mu is held.
func (s *Store) deleteJoinToken(hash string) error {
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Delete(keyJoinToken(hash), nil); err != nil {
		return err
	}
	return s.commit(b)
}

// ReplaceNodeCert writes nc as its node's record if the record is still
// seen (nil: there is none), else answers ErrChanged: the compare-and-set
// of UpdateNodeCert when the change was decided on another core.
func (s *Store) ReplaceNodeCert(seen *NodeCert, nc NodeCert) error {
	if err := CheckNodeName(nc.Name); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.GetNodeCert(nc.Name)
	switch {
	case errors.Is(err, ErrNotFound):
		if seen != nil {
			return fmt.Errorf("node %s: %w", nc.Name, ErrChanged)
		}
	case err != nil:
		return err
	case seen == nil || !sameNodeCert(cur, *seen):
		return fmt.Errorf("node %s: %w", nc.Name, ErrChanged)
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.setJSON(b, keyNodeCert(nc.Name), nc); err != nil {
		return err
	}
	return s.commit(b)
}

// sameNodeCert compares two records as stored (their JSON), so a record
// read back from the log compares equal to the one it was read as.
func sameNodeCert(a, b NodeCert) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

// NodeRecords makes the writes of the node CA's records: *Store on a
// single core; on a member of a core group, the group's log
// (internal/core/replication.Writes), so every core holds the same
// tokens and records. Reads stay on the Store.
type NodeRecords interface {
	CreateJoinToken(node string, ttl time.Duration) (string, JoinToken, error)
	ConsumeJoinToken(token string, accept func(JoinToken) error) (JoinToken, error)
	UpdateNodeCert(name string, change func(nc *NodeCert, create bool) error) (NodeCert, error)
	AdoptNodeCA(ca NodeCA) (NodeCA, error)
}

var _ NodeRecords = (*Store)(nil)
