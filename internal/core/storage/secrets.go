package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Secrets at rest: a function record (f/) and an outbox entry (o/) keep
// their sinks' and MQTT triggers' secrets sealed (package secrets) in one
// "sealed" field per sink or event, never in plain text. The Store seals
// them when it writes such a record and opens them when it reads one,
// so callers only ever see plain records.

// sinkSecrets are the parts of a sink sealed at rest: what the API
// redacts.
type sinkSecrets struct {
	Password string            `json:"p,omitempty"`
	Secret   string            `json:"s,omitempty"`
	Headers  map[string]string `json:"h,omitempty"`
	Query    string            `json:"q,omitempty"` // the URL's query
}

func (x sinkSecrets) empty() bool {
	return x.Password == "" && x.Secret == "" && len(x.Headers) == 0 && x.Query == ""
}

// sealSinks returns sinks with their secrets sealed, in new slices and
// maps (the caller's record is not changed).
func (s *Store) sealSinks(sinks []Sink, aad string) ([]Sink, error) {
	if s.keys == nil || len(sinks) == 0 {
		return sinks, nil
	}
	out := slices.Clone(sinks)
	for i := range out {
		p := &out[i].Params
		if p.Sealed != "" {
			continue // sealed already: the migration, or a write through a group's log
		}
		base, query, _ := strings.Cut(p.URL, "?")
		x := sinkSecrets{Password: p.Password, Secret: p.Secret, Headers: p.Headers, Query: query}
		if x.empty() {
			continue
		}
		b, err := json.Marshal(x)
		if err != nil {
			return nil, err
		}
		if p.Sealed, err = s.keys.Seal(b, aad); err != nil {
			return nil, err
		}
		p.Password, p.Secret, p.Headers, p.URL = "", "", nil, base
		if query != "" {
			p.URL += "?"
		}
	}
	return out, nil
}

// openSinks opens sinks' sealed secrets in place.
func (s *Store) openSinks(sinks []Sink, aad string) error {
	for i := range sinks {
		p := &sinks[i].Params
		if p.Sealed == "" {
			continue
		}
		if s.keys == nil {
			return fmt.Errorf("sink %d holds sealed secrets and the store has no key", i)
		}
		b, err := s.keys.Open(p.Sealed, aad)
		if err != nil {
			return fmt.Errorf("sink %d: %w", i, err)
		}
		var x sinkSecrets
		if err := json.Unmarshal(b, &x); err != nil {
			return fmt.Errorf("sink %d: decode its secrets: %w", i, err)
		}
		p.Password, p.Secret, p.Headers = x.Password, x.Secret, maps.Clone(x.Headers)
		if x.Query != "" {
			p.URL = strings.TrimSuffix(p.URL, "?") + "?" + x.Query
		}
		p.Sealed = ""
	}
	return nil
}

// sealEvents returns events with their MQTT passwords sealed, in new
// slices.
func (s *Store) sealEvents(events []Event, aad string) ([]Event, error) {
	if s.keys == nil || len(events) == 0 {
		return events, nil
	}
	out := slices.Clone(events)
	for i := range out {
		if p := out[i].Params; p != nil && p.Password != "" {
			c := *p
			v, err := s.keys.Seal([]byte(c.Password), aad)
			if err != nil {
				return nil, err
			}
			c.Password, c.Sealed = "", v
			out[i].Params = &c
		}
	}
	return out, nil
}

func (s *Store) openEvents(events []Event, aad string) error {
	for i := range events {
		p := events[i].Params
		if p == nil || p.Sealed == "" {
			continue
		}
		if s.keys == nil {
			return fmt.Errorf("event %d holds a sealed password and the store has no key", i)
		}
		b, err := s.keys.Open(p.Sealed, aad)
		if err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		c := *p
		c.Password, c.Sealed = string(b), ""
		events[i].Params = &c
	}
	return nil
}

const (
	aadSinks  = "edgefaas sinks"
	aadEvents = "edgefaas events"
)

// sealRecord returns v ready to be stored: a Function or SinkJob with
// its secrets sealed, anything else as it is.
func (s *Store) sealRecord(v any) (any, error) {
	var err error
	switch r := v.(type) {
	case Function:
		if r.Sinks, err = s.sealSinks(r.Sinks, aadSinks); err != nil {
			return nil, err
		}
		if r.Events, err = s.sealEvents(r.Events, aadEvents); err != nil {
			return nil, err
		}
		return r, nil
	case SinkJob:
		if r.Sinks, err = s.sealSinks(r.Sinks, aadSinks); err != nil {
			return nil, err
		}
		return r, nil
	}
	return v, nil
}

// openRecord opens the secrets of a decoded Function or SinkJob.
func (s *Store) openRecord(into any) error {
	switch r := into.(type) {
	case *Function:
		if err := s.openSinks(r.Sinks, aadSinks); err != nil {
			return fmt.Errorf("function %s/%s: %w", r.Module, r.Name, err)
		}
		if err := s.openEvents(r.Events, aadEvents); err != nil {
			return fmt.Errorf("function %s/%s: %w", r.Module, r.Name, err)
		}
	case *SinkJob:
		if err := s.openSinks(r.Sinks, aadSinks); err != nil {
			return fmt.Errorf("sink job %s: %w", r.ID, err)
		}
	}
	return nil
}

// needsSealing reports whether a stored record holds a secret in plain
// text or sealed under a key that is not the current one.
func (s *Store) needsSealing(sinks []Sink, events []Event) bool {
	for _, k := range sinks {
		p := k.Params
		if p.Sealed != "" {
			if !s.keys.SealedUnderCurrent(p.Sealed) {
				return true
			}
			continue
		}
		if _, query, _ := strings.Cut(p.URL, "?"); p.Password != "" || p.Secret != "" || len(p.Headers) > 0 || query != "" {
			return true
		}
	}
	for _, e := range events {
		if p := e.Params; p != nil && (p.Password != "" || p.Sealed != "" && !s.keys.SealedUnderCurrent(p.Sealed)) {
			return true
		}
	}
	return false
}

// SealSecrets seals, under the key ring's current key, every secret of
// the function records and the outbox still in plain text (written by a
// build that did not seal) or under an older key, then retires the
// older keys; it returns how many records it wrote. The core runs it at
// start, before anything else writes, and after each rotation.
func (s *Store) SealSecrets() (int, error) {
	if s.keys == nil {
		return 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sealMu.Lock()
	defer s.sealMu.Unlock()
	return s.sealAll(nil)
}

// RotateSecretsKey makes a new key current, seals every secret under it
// and retires the old keys. Function writes (s.mu) and outbox writes
// (sealMu) wait meanwhile, so no record is sealed under the old key
// after the scan passed it.
func (s *Store) RotateSecretsKey() (keyID string, resealed int, err error) {
	if s.keys == nil {
		return "", 0, fmt.Errorf("rotate: the store has no secrets key")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sealMu.Lock()
	defer s.sealMu.Unlock()
	id, err := s.keys.Rotate()
	if err != nil {
		return "", 0, err
	}
	n, err := s.sealAll(nil)
	return id, n, err
}

// sealAll writes again, sealed under the current key, every function
// and outbox record that needs it, in one synced batch, then retires the
// old keys. A group's rotation (rot not nil) keeps its sealed key in the
// same batch (secrets_group.go). Callers hold s.mu and sealMu.
func (s *Store) sealAll(rot *rotatedKey) (int, error) {
	b := s.db.NewBatch()
	defer b.Close()
	n := 0
	if rot != nil {
		if err := s.setJSON(b, keyRotatedKey(rot.id), rot.sealed); err != nil {
			return 0, err
		}
	}
	reseal := func(prefix []byte, decode func(k, v []byte) (any, bool, error)) error {
		return s.scan(prefix, func(k, v []byte) error {
			rec, needs, err := decode(k, v)
			if err != nil || !needs {
				return err
			}
			n++
			return s.setJSON(b, append([]byte(nil), k...), rec)
		})
	}
	err := reseal(prefixAllFuncs, func(k, v []byte) (any, bool, error) {
		var f Function
		if err := jsonUnmarshal(k, v, &f); err != nil {
			return nil, false, err
		}
		if !s.needsSealing(f.Sinks, f.Events) {
			return nil, false, nil
		}
		return f, true, s.openRecord(&f)
	})
	if err != nil {
		return 0, fmt.Errorf("seal function secrets: %w", err)
	}
	err = reseal(prefixOutbox, func(k, v []byte) (any, bool, error) {
		var j SinkJob
		if err := jsonUnmarshal(k, v, &j); err != nil {
			return nil, false, err
		}
		if !s.needsSealing(j.Sinks, nil) {
			return nil, false, nil
		}
		return j, true, s.openRecord(&j)
	})
	if err != nil {
		return 0, fmt.Errorf("seal outbox secrets: %w", err)
	}
	if n > 0 || rot != nil {
		if err := s.commit(b); err != nil {
			return 0, fmt.Errorf("seal secrets: %w", err)
		}
	}
	// pebble keeps the old values until compaction: compact the
	// rewritten ranges so the plain or old-key bytes leave the tables.
	if n > 0 {
		if err := s.db.Compact(context.Background(), prefixAllFuncs, prefixEnd(prefixAllFuncs), true); err != nil {
			return n, fmt.Errorf("compact function records: %w", err)
		}
		if err := s.db.Compact(context.Background(), prefixOutbox, prefixEnd(prefixOutbox), true); err != nil {
			return n, fmt.Errorf("compact the outbox: %w", err)
		}
	}
	return n, s.keys.Retire()
}
