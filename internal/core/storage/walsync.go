package storage

import (
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// The write-ahead log's syncs: each one waits for the disk and wears a
// small machine's flash, and a core group's state machine, which applies
// committed entries one after another, pays one per batch of entries
// instead of one per entry (Deferred, SyncWAL).

// Deferred returns a view of s whose commits do not wait for the disk:
// each is in the write-ahead log, unsynced, when it returns, and SyncWAL
// makes every one so far durable. A core group's state machine applies a
// batch of committed entries through it and syncs once before any entry
// is answered; a crash before the sync loses only entries the group's log
// holds and replays. Everything else writes through s.
func (s *Store) Deferred() *Store { return &Store{state: s.state, deferSync: true} }

// SyncWAL waits until every commit so far is on the disk.
func (s *Store) SyncWAL() error {
	if err := s.db.LogData(nil, pebble.Sync); err != nil {
		return fmt.Errorf("sync the database's log: %w", err)
	}
	return nil
}

// WALSyncs counts the syncs of the write-ahead log since the store opened.
func (s *Store) WALSyncs() int64 { return s.walSyncs.Load() }

// syncOpt is how s commits a write its caller acknowledges.
func (s *Store) syncOpt() *pebble.WriteOptions {
	if s.deferSync {
		return pebble.NoSync
	}
	return pebble.Sync
}

// countWALSyncs wraps fs so that the syncs of the write-ahead log's files
// (NNNNNN.log, made new or recycled) are counted in n.
func countWALSyncs(fs vfs.FS, n *atomic.Int64) vfs.FS { return walSyncCounter{FS: fs, n: n} }

type walSyncCounter struct {
	vfs.FS
	n *atomic.Int64
}

func (c walSyncCounter) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return walFile{File: f, n: c.n}, nil
}

func (c walSyncCounter) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := c.FS.Create(name, cat)
	return c.wrap(name, f, err)
}

func (c walSyncCounter) ReuseForWrite(oldname, newname string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := c.FS.ReuseForWrite(oldname, newname, cat)
	return c.wrap(newname, f, err)
}

func (c walSyncCounter) OpenReadWrite(name string, cat vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := c.FS.OpenReadWrite(name, cat, opts...)
	return c.wrap(name, f, err)
}

// walFile counts its syncs.
type walFile struct {
	vfs.File
	n *atomic.Int64
}

func (f walFile) Sync() error {
	f.n.Add(1)
	return f.File.Sync()
}

func (f walFile) SyncData() error {
	f.n.Add(1)
	return f.File.SyncData()
}

func (f walFile) SyncTo(length int64) (fullSync bool, err error) {
	f.n.Add(1)
	return f.File.SyncTo(length)
}
