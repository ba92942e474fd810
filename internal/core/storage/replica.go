package storage

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// What a core group's state machine (internal/core/replication) needs of
// the Store: writes whose random and clock inputs are chosen by the core
// that proposes them, the log index applied, recorded in the batch of the
// write it applied, and the whole database as a checkpoint to send and to
// replace the contents with. A single core uses none of it.

// Stamp is what creating a record takes from outside the database: its
// identity (see cas.go) and its time. A single core makes one at the
// write; a core group makes it where the write is proposed and carries it
// in the log entry, so every member stores the same record.
type Stamp struct {
	ID string    `json:"id"`
	At time.Time `json:"at"`
}

// NewStamp returns a fresh identity and the Store's current time.
func (s *Store) NewStamp() (Stamp, error) {
	id, err := newID()
	if err != nil {
		return Stamp{}, err
	}
	return Stamp{ID: id, At: s.now()}, nil
}

// Now is the Store's clock (UTC), which the Stamped and At writes take in
// place of reading it.
func (s *Store) Now() time.Time { return s.now() }

// SetLogIndex makes every later commit also record i as the replicated
// log's last applied entry (meta/log_index), in the same batch: after a
// crash, the state machine skips the entries its database already holds.
// Only a core group's state machine, the database's one writer there,
// calls it, before applying entry i; 0 turns the recording off.
func (s *Store) SetLogIndex(i uint64) { s.logIndex.Store(i) }

// LogIndex returns the last applied index recorded by SetLogIndex's
// commits, 0 if none.
func (s *Store) LogIndex() (uint64, error) {
	v, closer, err := s.db.Get(keyLogIndex())
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read the applied log index: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return 0, fmt.Errorf("applied log index: %d bytes, want 8", len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// addLogIndex adds meta/log_index to b if SetLogIndex set one.
func (s *Store) addLogIndex(b *pebble.Batch) error {
	i := s.logIndex.Load()
	if i == 0 {
		return nil
	}
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], i)
	return b.Set(keyLogIndex(), v[:], nil)
}

// Checkpoint writes a consistent copy of the database into dir, which must
// not exist: pebble's checkpoint, hard links to the immutable table files
// where the file system allows, so it is quick and small whatever the
// database's size.
func (s *Store) Checkpoint(dir string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.Checkpoint(dir, pebble.WithFlushedWAL()); err != nil {
		return fmt.Errorf("checkpoint into %s: %w", dir, err)
	}
	return nil
}

// replaceChunk bounds one batch of Replace, so replacing a large database
// does not hold it in memory at once.
const replaceChunk = 8 << 20

// Restoring reports whether a Replace was interrupted (meta/restoring is
// set): the contents are partly the old and partly the new database, and
// the caller must replace them again before serving.
func (s *Store) Restoring() (bool, error) {
	return s.exists(keyRestoring())
}

// Replace replaces the whole contents of the database with those of the
// pebble database in dir (a Checkpoint received from another core). It
// writes meta/restoring in its first batch and removes it in its last, so
// an interrupted replace is seen (Restoring) and done again.
func (s *Store) Replace(dir string) error {
	src, err := pebble.Open(dir, &pebble.Options{ReadOnly: true, Logger: pebbleLogger{slog.Default().With("component", "pebble")}})
	if err != nil {
		return fmt.Errorf("open the snapshot in %s: %w", dir, err)
	}
	defer src.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.cache.invalidate()
	b := s.db.NewBatch()
	if err := b.DeleteRange([]byte{}, []byte{0xff}, nil); err != nil {
		b.Close()
		return err
	}
	if err := b.Set(keyRestoring(), []byte("1"), nil); err != nil {
		b.Close()
		return err
	}
	it, err := src.NewIter(nil)
	if err != nil {
		b.Close()
		return fmt.Errorf("read the snapshot: %w", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			b.Close()
			return fmt.Errorf("read the snapshot: %w", err)
		}
		if string(it.Key()) == layoutRestoring {
			continue
		}
		if err := b.Set(it.Key(), v, nil); err != nil {
			b.Close()
			return err
		}
		if b.Len() >= replaceChunk {
			err := b.Commit(pebble.Sync)
			b.Close()
			if err != nil {
				return fmt.Errorf("replace the database: %w", err)
			}
			b = s.db.NewBatch()
		}
	}
	if err := it.Error(); err != nil {
		b.Close()
		return fmt.Errorf("read the snapshot: %w", err)
	}
	if err := b.Delete(keyRestoring(), nil); err != nil {
		b.Close()
		return err
	}
	err = b.Commit(pebble.Sync)
	b.Close()
	if err != nil {
		return fmt.Errorf("replace the database: %w", err)
	}
	return nil
}
