package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/edgefaas/edgefaas/internal/core/secrets"
)

// Sentinel errors. Callers test them with errors.Is; the wrapped message
// names the module, function or subject concerned.
var (
	// ErrNotFound means the module, function, subject or code does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists means a module, function or subject of that name exists.
	ErrExists = errors.New("already exists")
	// ErrInvalidName means a name does not match ^[_a-zA-Z0-9]+$ or is
	// longer than MaxNameLen.
	ErrInvalidName = errors.New("invalid name")
	// ErrDefaultModule means the caller tried to delete or rename the
	// default module "_", which always exists.
	ErrDefaultModule = errors.New("the default module _ cannot be deleted or renamed")
	// ErrAdminRevoke means the caller tried to revoke an admin's token, which
	// would lock every operator out; an admin token can only be rotated.
	ErrAdminRevoke = errors.New("an admin token cannot be revoked, only rotated")
	// ErrUnauthenticated means a token matches no active subject.
	ErrUnauthenticated = errors.New("token matches no subject")
	// ErrInvalid marks a write refused for what it was given (its own
	// message says what), as opposed to a failure of the database.
	ErrInvalid = errors.New("invalid input")
)

// invalid is an ErrInvalid with its own message.
type invalid string

func (e invalid) Error() string        { return string(e) }
func (e invalid) Is(target error) bool { return target == ErrInvalid }

const schemaVersion = "1"

// Store is the core's database. It is safe for concurrent use: mutations
// are serialised so that their read-check-write sequences are atomic;
// reads of small records (token index, subjects, modules, functions) are
// served from an in-memory copy that every commit invalidates, since the
// Store is the database's only writer. That keeps pebble off the
// invocation path, where each request authenticates and loads its function.
type Store struct {
	*state
	// deferSync: this view's commits leave the fsync to SyncWAL
	// (Deferred).
	deferSync bool
}

// state is a Store's database and everything its views share.
type state struct {
	db    *pebble.DB
	mu    sync.Mutex // serialises mutations
	now   func() time.Time
	cache readCache
	guard *diskGuard // refuses growing writes on a full disk (diskfull.go)

	scanned  atomic.Int64  // keys visited by scans (see KeysScanned)
	logIndex atomic.Uint64 // in a core group, the log entry being applied (replica.go)

	// keys seal the secrets of function records and the outbox
	// (secrets.go); nil stores them as given (tests of other parts).
	keys *secrets.Keyring
	// sealMu is held for reading by outbox writes and for writing by a
	// rotation, which must not miss a job sealed under the old key.
	sealMu sync.RWMutex
	// defaultQuota is Options.DefaultQuota (nil: DefaultQuota).
	defaultQuota *Quota
	// walSyncs counts the syncs of the write-ahead log (walsync.go).
	walSyncs *atomic.Int64
}

// Options size the database's memory for the node's budget
// (internal/membudget). Zero fields take pebble's defaults, which are
// small and fixed: 8 MiB of block cache, 4 MiB memtables.
type Options struct {
	// CacheBytes is the block cache (pebble's default 8 MiB).
	CacheBytes int64
	// MemTableBytes is one memtable (pebble's default 4 MiB); at most two
	// are in memory at once (one being flushed).
	MemTableBytes int64
	// MaxOpenFiles bounds open table files (pebble's default 1000; each
	// open table keeps its index block in memory).
	MaxOpenFiles int
	// Secrets seals the secrets of function records and the outbox at
	// rest (the core always gives one); nil keeps them as given.
	Secrets *secrets.Keyring
	// DefaultQuota, if set, is the quota of every subject the operator
	// set none for (nil: the package's DefaultQuota).
	DefaultQuota *Quota
}

// Open opens (creating if needed) the pebble database in dir with pebble's
// default sizes. Pebble's own log lines go to logger; nil means slog.Default().
func Open(dir string, logger *slog.Logger) (*Store, error) {
	return OpenWith(dir, logger, Options{})
}

// OpenWith is Open with the database's memory sized by o.
func OpenWith(dir string, logger *slog.Logger, o Options) (*Store, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	guard := newDiskGuard(dir, vfs.Default, logger.With("component", "storage"))
	walSyncs := new(atomic.Int64)
	guard.beforeOpen()
	opts := &pebble.Options{Logger: pebbleLogger{logger.With("component", "pebble")},
		CacheSize: o.CacheBytes, MemTableSize: uint64(max(o.MemTableBytes, 0)), MaxOpenFiles: o.MaxOpenFiles,
		MemTableStopWritesThreshold: 2,
		FS:                          vfs.OnDiskFull(countWALSyncs(vfs.Default, walSyncs), guard.onDiskFull),
		EventListener:               &pebble.EventListener{BackgroundError: guard.backgroundError},
		FormatMajorVersion:          pebble.FormatValueSeparation}
	// Values of 64 KiB or more (queued calls' args, code) live in blob
	// files that compactions reference instead of rewriting: a tenant
	// queuing 4 MiB calls made every compaction rewrite the queue so far
	// (three times the args for 48 calls, growing with the queue), and
	// slowed a neighbour's calls 34- to 44-fold; 5- to 8-fold with it
	// (docs/RATIONALE.md#why-pebble). It needs columnar blocks and the
	// format version that has blob files, to which an older store is
	// ratcheted when it opens.
	opts.Experimental.EnableColumnarBlocks = func() bool { return true }
	opts.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
		return pebble.ValueSeparationPolicy{Enabled: true, MinimumSize: separateValuesFrom,
			MaxBlobReferenceDepth: 10, RewriteMinimumAge: 5 * time.Minute, TargetGarbageRatio: 0.2}
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open database in %s: %w", dir, err)
	}
	s := &Store{state: &state{db: db, now: func() time.Time { return time.Now().UTC() }, guard: guard, keys: o.Secrets, defaultQuota: o.DefaultQuota, walSyncs: walSyncs}}
	v, err := s.get(keySchema())
	switch {
	case errors.Is(err, ErrNotFound):
		s.cache.invalidate()
		if err := db.Set(keySchema(), []byte(schemaVersion), pebble.Sync); err != nil {
			db.Close()
			return nil, fmt.Errorf("write schema version: %w", err)
		}
	case err != nil:
		db.Close()
		return nil, fmt.Errorf("read schema version: %w", err)
	case string(v) != schemaVersion:
		db.Close()
		return nil, fmt.Errorf("database in %s has schema version %q, this build understands %q", dir, v, schemaVersion)
	}
	return s, nil
}

// separateValuesFrom is the size from which a value is kept in a blob
// file: the values written once and rewritten for nothing by compactions
// are large (queued calls' args, code); records and function entries are
// mostly small, and a record only near its logs' bound passes it.
const separateValuesFrom = 64 << 10

// Close flushes and closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// get returns a copy of the value at key, or ErrNotFound.
func (s *Store) get(key []byte) ([]byte, error) {
	cached, found, gen := s.cache.lookup(key)
	if found {
		if cached == nil {
			return nil, ErrNotFound
		}
		return append([]byte(nil), cached...), nil
	}
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		s.cache.keep(key, nil, gen)
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	defer closer.Close()
	out := append([]byte(nil), v...)
	s.cache.keep(key, out, gen)
	return append([]byte(nil), out...), nil
}

// getJSON decodes the record at key into into. Function and Subject
// records, read on every request, are also kept decoded (decoding was
// 14% of the core's CPU under load); callers get their own copy.
func (s *Store) getJSON(key []byte, into any) error {
	cached, found, gen := s.cache.lookupDecoded(key)
	if found && copyRecord(cached, into) {
		return nil
	}
	v, err := s.get(key)
	if err != nil {
		return err
	}
	if err := s.decode(key, v, into); err != nil {
		return err
	}
	switch r := into.(type) {
	case *Function:
		c := *r
		c.Metadata.AllowedHosts = slices.Clone(r.Metadata.AllowedHosts)
		s.cache.keepDecoded(key, c, gen)
	case *Subject:
		s.cache.keepDecoded(key, *r, gen)
	}
	return nil
}

// copyRecord copies a decoded record into into, with its own slices, and
// reports whether the types matched.
func copyRecord(cached, into any) bool {
	switch r := into.(type) {
	case *Function:
		f, ok := cached.(Function)
		if ok {
			*r = f
			r.Metadata.AllowedHosts = slices.Clone(f.Metadata.AllowedHosts)
		}
		return ok
	case *Subject:
		sub, ok := cached.(Subject)
		if ok {
			*r = sub
		}
		return ok
	}
	return false
}

func (s *Store) exists(key []byte) (bool, error) {
	_, err := s.get(key)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// setJSON adds v at key to b, its secrets sealed (a Function or a
// SinkJob, secrets.go).
func (s *Store) setJSON(b *pebble.Batch, key []byte, v any) error {
	v, err := s.sealRecord(v)
	if err != nil {
		return fmt.Errorf("seal %s: %w", key, err)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Set(key, data, nil)
}

// commit applies b with fsync (in a Deferred view, without: see SyncWAL):
// the caller acknowledges the write only after.
// A batch that makes the database grow is refused with ErrDiskFull on a
// full disk (diskfull.go); commitFreeing is for batches that free space.
func (s *Store) commit(b *pebble.Batch) error {
	if err := s.guard.admit(b.Len()); err != nil {
		return err
	}
	if err := s.commitFreeing(b); err != nil {
		return err
	}
	s.flushLarge(b.Len())
	return nil
}

// commitFreeing is commit without the free-space check: for batches that
// delete (with at most small records beside), which must run on a full
// disk so that space can be freed.
func (s *Store) commitFreeing(b *pebble.Batch) error {
	if err := s.addLogIndex(b); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	err := b.Commit(s.syncOpt())
	s.cache.invalidate() // even on error: the batch may be partly visible
	if err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// scan calls fn with each key and value under prefix, in key order. The
// value is only valid during the call.
func (s *Store) scan(prefix []byte, fn func(k, v []byte) error) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return fmt.Errorf("scan %s: %w", prefix, err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		s.scanned.Add(1)
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("scan %s: %w", prefix, err)
		}
		if err := fn(it.Key(), v); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("scan %s: %w", prefix, err)
	}
	return nil
}

// getNamed reads the JSON record at key with getJSON. Errors name the
// record as what and name: `script "x": not found`.
func getNamed[T any](s *Store, key []byte, what, name string) (T, error) {
	var rec T
	if err := s.getJSON(key, &rec); err != nil {
		var zero T
		return zero, fmt.Errorf("%s %q: %w", what, name, err)
	}
	return rec, nil
}

// listJSON decodes every JSON record under prefix, in key order.
func listJSON[T any](s *Store, prefix []byte) ([]T, error) {
	var out []T
	err := s.scan(prefix, func(k, v []byte) error {
		var rec T
		if err := s.decode(k, v, &rec); err != nil {
			return err
		}
		out = append(out, rec)
		return nil
	})
	return out, err
}

// getDirect reads the record at key from pebble, past the read cache, and
// decodes it with decode. It is for records written often (activations,
// cron states), whose commits do not invalidate the cache. Errors name the
// record as what and name: `activation "ID": not found`.
func (s *Store) getDirect(key []byte, what, name string, decode func(k, v []byte) error) error {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return fmt.Errorf("%s %q: %w", what, name, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("read %s %q: %w", what, name, err)
	}
	defer closer.Close()
	return decode(key, v)
}

// Stats are counts for metrics and readiness.
type Stats struct {
	Modules   int    // including the default module
	Functions int    // across all modules
	CodeBlobs int    // distinct code hashes stored
	CodeBytes int64  // total size of the distinct code
	DiskBytes uint64 // pebble's estimate of its files on disk
}

// Stats counts the database's contents. It scans keys, so it costs O(n);
// it is meant for a metrics scrape, not a hot path.
func (s *Store) Stats() (Stats, error) {
	st := Stats{Modules: 1}
	if err := s.scan(prefixModules, func(k, v []byte) error { st.Modules++; return nil }); err != nil {
		return st, err
	}
	if err := s.scan(prefixAllFuncs, func(k, v []byte) error { st.Functions++; return nil }); err != nil {
		return st, err
	}
	err := s.scan(prefixRefs, func(k, v []byte) error {
		var ref codeRef
		if err := json.Unmarshal(v, &ref); err != nil {
			return fmt.Errorf("decode %s: %w", k, err)
		}
		st.CodeBlobs++
		st.CodeBytes += ref.Size
		return nil
	})
	st.DiskBytes = s.db.Metrics().DiskSpaceUsage()
	return st, err
}

// decode decodes the record v stored at key k and opens its secrets.
func (s *Store) decode(k, v []byte, into any) error {
	if err := jsonUnmarshal(k, v, into); err != nil {
		return err
	}
	if err := s.openRecord(into); err != nil {
		return fmt.Errorf("open %s: %w", k, err)
	}
	return nil
}

// jsonUnmarshal decodes the value v stored at key k.
func jsonUnmarshal(k, v []byte, into any) error {
	if err := json.Unmarshal(v, into); err != nil {
		return fmt.Errorf("decode %s: %w", k, err)
	}
	return nil
}
