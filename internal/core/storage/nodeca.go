package storage

import (
	"errors"
	"fmt"
)

// NodeCA is a core group's node CA: the certificate and key every member
// issues workers' certificates with, so a worker joined through one core
// is a worker of the group. A single core keeps its CA in files
// (DATA_DIR/node-ca) and never writes this record.
type NodeCA struct {
	CertPEM string `json:"cert_pem"`
	KeyPEM  string `json:"key_pem"`
}

// GetNodeCA returns the group's node CA, ErrNotFound before one is set.
func (s *Store) GetNodeCA() (NodeCA, error) {
	var ca NodeCA
	if err := s.getJSON(keyNodeCA(), &ca); err != nil {
		return NodeCA{}, err
	}
	return ca, nil
}

// AdoptNodeCA sets ca as the group's node CA unless one is set, and
// returns the one set: the first proposed wins, and every later proposal
// (a member restarted before it learnt the answer) adopts it.
func (s *Store) AdoptNodeCA(ca NodeCA) (NodeCA, error) {
	if ca.CertPEM == "" || ca.KeyPEM == "" {
		return NodeCA{}, fmt.Errorf("%w: a node CA needs a certificate and a key", ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.GetNodeCA()
	if err == nil {
		return cur, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return NodeCA{}, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.setJSON(b, keyNodeCA(), ca); err != nil {
		return NodeCA{}, err
	}
	return ca, s.commit(b)
}
