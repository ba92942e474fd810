package replication

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hashicorp/raft"
)

// LogStore keeps Raft's log and its stable values (current term, last
// vote) in a pebble database of their own: raft.LogStore and
// raft.StableStore. Every write is synced, as Raft requires before it
// acknowledges an entry or a vote.
//
// Keys: "l" + the index (8 bytes, big endian, so the log is in key order)
// for an entry; "s" + the key for a stable value.
type LogStore struct {
	db *pebble.DB
}

var (
	_ raft.LogStore    = (*LogStore)(nil)
	_ raft.StableStore = (*LogStore)(nil)
)

const (
	logPrefix    = 'l'
	stablePrefix = 's'
)

// errStableNotFound is the error Raft expects from a StableStore for a
// missing key: it compares the message, not the value.
var errStableNotFound = errors.New("not found")

// LogOptions size the log database's memory for the node's budget, as
// storage.Options do the state's; zero fields take pebble's defaults
// (8 MiB of block cache, 4 MiB memtables).
type LogOptions struct {
	CacheBytes    int64
	MemTableBytes int64
}

// OpenLogStore opens (creating if needed) the log database in dir with
// pebble's default sizes.
func OpenLogStore(dir string, logger *slog.Logger) (*LogStore, error) {
	return OpenLogStoreWith(dir, logger, LogOptions{})
}

// OpenLogStoreWith is OpenLogStore with the database's memory sized by o.
func OpenLogStoreWith(dir string, logger *slog.Logger, o LogOptions) (*LogStore, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the raft log directory: %w", err)
	}
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{logger.With("component", "raft-log")},
		CacheSize: o.CacheBytes, MemTableSize: uint64(max(o.MemTableBytes, 0)), MemTableStopWritesThreshold: 2})
	if err != nil {
		return nil, fmt.Errorf("open the raft log in %s: %w", dir, err)
	}
	return &LogStore{db: db}, nil
}

// Close closes the database.
func (s *LogStore) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close the raft log: %w", err)
	}
	return nil
}

func logKey(index uint64) []byte {
	k := make([]byte, 9)
	k[0] = logPrefix
	binary.BigEndian.PutUint64(k[1:], index)
	return k
}

// edge returns the first (or last) log index, 0 for an empty log.
func (s *LogStore) edge(last bool) (uint64, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{logPrefix}, UpperBound: []byte{logPrefix + 1}})
	if err != nil {
		return 0, fmt.Errorf("read the raft log: %w", err)
	}
	defer it.Close()
	ok := it.First()
	if last {
		ok = it.Last()
	}
	if !ok {
		return 0, it.Error()
	}
	k := it.Key()
	if len(k) != 9 {
		return 0, fmt.Errorf("raft log: malformed key %x", k)
	}
	return binary.BigEndian.Uint64(k[1:]), nil
}

// FirstIndex returns the first index in the log, 0 if it is empty.
func (s *LogStore) FirstIndex() (uint64, error) { return s.edge(false) }

// LastIndex returns the last index in the log, 0 if it is empty.
func (s *LogStore) LastIndex() (uint64, error) { return s.edge(true) }

// GetLog reads the entry at index into out, raft.ErrLogNotFound if there
// is none.
func (s *LogStore) GetLog(index uint64, out *raft.Log) error {
	v, closer, err := s.db.Get(logKey(index))
	if errors.Is(err, pebble.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return fmt.Errorf("read raft log entry %d: %w", index, err)
	}
	defer closer.Close()
	if err := decodeLog(v, out); err != nil {
		return fmt.Errorf("raft log entry %d: %w", index, err)
	}
	out.Index = index
	return nil
}

// StoreLog stores one entry.
func (s *LogStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

// StoreLogs stores entries in one synced batch.
func (s *LogStore) StoreLogs(logs []*raft.Log) error {
	b := s.db.NewBatch()
	defer b.Close()
	for _, l := range logs {
		if err := b.Set(logKey(l.Index), encodeLog(l), nil); err != nil {
			return fmt.Errorf("store raft log entry %d: %w", l.Index, err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("store raft log entries: %w", err)
	}
	return nil
}

// DeleteRange deletes the entries from min to max, both included.
func (s *LogStore) DeleteRange(min, max uint64) error {
	if min > max {
		return nil
	}
	end := []byte{logPrefix + 1}
	if max < ^uint64(0) {
		end = logKey(max + 1)
	}
	if err := s.db.DeleteRange(logKey(min), end, pebble.Sync); err != nil {
		return fmt.Errorf("delete raft log entries %d to %d: %w", min, max, err)
	}
	return nil
}

func stableKey(k []byte) []byte { return append([]byte{stablePrefix}, k...) }

// Set stores a stable value.
func (s *LogStore) Set(key, val []byte) error {
	if err := s.db.Set(stableKey(key), val, pebble.Sync); err != nil {
		return fmt.Errorf("store raft value %s: %w", key, err)
	}
	return nil
}

// Get returns a stable value; a missing key is the error "not found".
func (s *LogStore) Get(key []byte) ([]byte, error) {
	v, closer, err := s.db.Get(stableKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, errStableNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read raft value %s: %w", key, err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

// SetUint64 stores a stable number.
func (s *LogStore) SetUint64(key []byte, val uint64) error {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], val)
	return s.Set(key, v[:])
}

// GetUint64 returns a stable number; a missing key is the error "not
// found".
func (s *LogStore) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("raft value %s: %d bytes, want 8", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// An entry's value: term (uvarint), type (one byte), data and extensions
// (each a uvarint length and the bytes), append time (varint Unix
// nanoseconds, 0 for none). The index is the key.
func encodeLog(l *raft.Log) []byte {
	b := make([]byte, 0, 24+len(l.Data)+len(l.Extensions))
	b = binary.AppendUvarint(b, l.Term)
	b = append(b, byte(l.Type))
	b = binary.AppendUvarint(b, uint64(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.AppendUvarint(b, uint64(len(l.Extensions)))
	b = append(b, l.Extensions...)
	var at int64
	if !l.AppendedAt.IsZero() {
		at = l.AppendedAt.UnixNano()
	}
	return binary.AppendVarint(b, at)
}

func decodeLog(v []byte, l *raft.Log) error {
	errShort := errors.New("truncated")
	term, n := binary.Uvarint(v)
	if n <= 0 || len(v) < n+1 {
		return errShort
	}
	v = v[n:]
	l.Term = term
	l.Type = raft.LogType(v[0])
	v = v[1:]
	bytesField := func() ([]byte, error) {
		size, n := binary.Uvarint(v)
		if n <= 0 || uint64(len(v)-n) < size {
			return nil, errShort
		}
		var out []byte
		if size > 0 {
			out = append([]byte(nil), v[n:n+int(size)]...)
		}
		v = v[n+int(size):]
		return out, nil
	}
	var err error
	if l.Data, err = bytesField(); err != nil {
		return err
	}
	if l.Extensions, err = bytesField(); err != nil {
		return err
	}
	at, n := binary.Varint(v)
	if n <= 0 {
		return errShort
	}
	l.AppendedAt = time.Time{}
	if at != 0 {
		l.AppendedAt = time.Unix(0, at).UTC()
	}
	return nil
}

// pebbleLogger routes pebble's lines into slog, its chatter at Debug.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any)  { p.l.Debug(fmt.Sprintf(format, args...)) }
func (p pebbleLogger) Errorf(format string, args ...any) { p.l.Error(fmt.Sprintf(format, args...)) }

// Fatalf logs and exits, as pebble's default logger does.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error("fatal: " + fmt.Sprintf(format, args...))
	os.Exit(1)
}
