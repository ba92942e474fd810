package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Per-subject egress bounds (docs/RATIONALE.md#why-the-node-ca-join-tokens-and-egress-bounds): the operator's cap on what one
// subject's functions may grant themselves in allowed_hosts, and on where
// anything sent on that subject's behalf (completion callbacks, sinks) may
// go. Kept under e/<subject> as {"hosts": [...]}; no record means the
// subject is bounded only by the node-wide policy (--egress-allow).

type egressRecord struct {
	Hosts []string `json:"hosts"`
}

// SetSubjectEgress stores the hosts (egress patterns: host, host:port,
// *.domain, *) the operator permits for subject; an empty list permits
// nothing. The subject must exist. Effective for the next call.
func (s *Store) SetSubjectEgress(subject string, hosts []string) error {
	if hosts == nil {
		hosts = []string{}
	}
	return s.putSubjectRecord(subject, keyEgress(subject), egressRecord{Hosts: hosts})
}

// ClearSubjectEgress removes subject's bound: its functions are then
// bounded by the node-wide policy only.
func (s *Store) ClearSubjectEgress(subject string) error {
	return s.deleteSubjectRecord(subject, keyEgress(subject))
}

// putSubjectRecord stores v at key, a record of subject's (its egress
// bound, its quota); the subject must exist.
func (s *Store) putSubjectRecord(subject string, key []byte, v any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.GetSubject(subject); err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.setJSON(b, key, v); err != nil {
		return err
	}
	return s.commit(b)
}

// deleteSubjectRecord removes key, a record of subject's; the subject
// must exist. It frees space, so a full disk does not refuse it.
func (s *Store) deleteSubjectRecord(subject string, key []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.GetSubject(subject); err != nil {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Delete(key, nil); err != nil {
		return err
	}
	return s.commitFreeing(b)
}

// SubjectEgress returns the hosts the operator permits for subject and
// whether a bound is set at all (false: only the node-wide policy). It is
// one cached point read, cheap enough for every invocation.
func (s *Store) SubjectEgress(subject string) (hosts []string, set bool, err error) {
	v, err := s.get(keyEgress(subject))
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var r egressRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, false, fmt.Errorf("decode egress bound of %q: %w", subject, err)
	}
	return slices.Clip(r.Hosts), true, nil
}
