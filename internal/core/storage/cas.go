package storage

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
)

// Compare-and-set. A caller that decides on a record (the API checks who
// may change a function or module) and writes later — after reading a
// request body for up to minutes — passes the record it decided on, and
// the Store refuses with ErrChanged when the stored record is no longer
// that one. The check and the write happen under s.mu in one batch, so
// nothing can come between them. A record's identity is its ID, a random
// value given at creation that no later record of the same name shares:
// a delete and a re-create under the same name, owner and version is a
// change. Why: docs/RATIONALE.md, "Compare-and-set writes".

// ErrChanged means the module, function or script changed (was updated,
// deleted and re-created, or replaced) since the caller read it; the
// caller reads it again and retries.
var ErrChanged = errors.New("changed while the request was in progress; retry")

// newID returns a fresh record identity: 128 random bits in hex.
func newID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("record identity: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// sameFunction reports whether the stored function cur is the record seen.
func sameFunction(cur, seen Function) bool {
	return cur.ID == seen.ID && cur.Owner == seen.Owner && cur.Version == seen.Version &&
		cur.Module == seen.Module && cur.Name == seen.Name
}

// sameModule reports whether the stored module cur is the record seen.
func sameModule(cur, seen Module) bool {
	return cur.ID == seen.ID && cur.Owner == seen.Owner && cur.Name == seen.Name
}

// checkFunction loads the function seen names and returns it if it is
// still the record seen: ErrNotFound if it is gone, ErrChanged if it
// differs. Callers hold s.mu.
func (s *Store) checkFunction(seen Function) (Function, error) {
	cur, err := s.GetFunction(seen.Module, seen.Name)
	if err != nil {
		return Function{}, err
	}
	if !sameFunction(cur, seen) {
		return Function{}, fmt.Errorf("function %q in module %q: %w", seen.Name, seen.Module, ErrChanged)
	}
	return cur, nil
}

// checkModule is checkFunction for a module. Callers hold s.mu.
func (s *Store) checkModule(seen Module) (Module, error) {
	cur, err := s.GetModule(seen.Name)
	if err != nil {
		return Module{}, err
	}
	if !sameModule(cur, seen) {
		return Module{}, fmt.Errorf("module %q: %w", seen.Name, ErrChanged)
	}
	return cur, nil
}
