package storage

import (
	"errors"
	"fmt"
)

// Probe checks that the database answers a read, in constant time: it
// reads the schema record from pebble (not from the read cache). /readyz
// is public and calls it on every request, so it must never scan.
func (s *Store) Probe() error {
	v, closer, err := s.db.Get(keySchema())
	if err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	ok := string(v) == schemaVersion
	closer.Close()
	if !ok {
		return errors.New("schema version changed under the running core")
	}
	return nil
}

// KeysScanned counts the keys visited by prefix scans since Open: what
// Stats, listings and module renames cost. Tests use it to show that a
// path (such as /readyz) does not scan.
func (s *Store) KeysScanned() int64 { return s.scanned.Load() }
