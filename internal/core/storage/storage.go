package storage

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
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
)

// DefaultModule is the module every subject can put functions in, as in
// FunLess. It always exists and cannot be deleted or renamed.
const DefaultModule = "_"

// MaxNameLen is the longest module, function or subject name FunLess accepts.
const MaxNameLen = 160

const schemaVersion = "1"

var nameRE = regexp.MustCompile(`^[_a-zA-Z0-9]+$`)

// ValidName reports whether s can name a module, function or subject. The
// rule is FunLess's, and it also guarantees that names never contain the
// key separator "/".
func ValidName(s string) bool {
	return len(s) >= 1 && len(s) <= MaxNameLen && nameRE.MatchString(s)
}

// CheckName returns an ErrInvalidName error explaining what is wrong with s,
// or nil. kind ("module", "function", "subject") goes into the message.
func CheckName(kind, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: %s name is empty", ErrInvalidName, kind)
	case len(s) > MaxNameLen:
		return fmt.Errorf("%w: %s name is %d characters long, the limit is %d", ErrInvalidName, kind, len(s), MaxNameLen)
	case !nameRE.MatchString(s):
		return fmt.Errorf("%w: %s name %q may contain only letters, digits and _", ErrInvalidName, kind, s)
	}
	return nil
}

// Module is a named group of functions with one owning subject. The default
// module has no owner: each of its functions belongs to its creator.
type Module struct {
	Name      string    `json:"name"`
	Owner     string    `json:"owner,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Metadata is what a client declares about a function. It is stored as sent
// (after validation) and never dropped; an update without metadata keeps the
// previous one.
type Metadata struct {
	// Tag is a free label, as in FunLess.
	Tag string `json:"tag"`
	// Capacity is the memory the function needs, in MiB; the scheduler only
	// picks workers with that much free. 0 means undeclared.
	Capacity int64 `json:"capacity"`
	// TimeoutMS bounds one invocation, in milliseconds; 0 means the
	// platform default.
	TimeoutMS int64 `json:"timeout_ms"`
	// AllowedHosts lists the hosts the function may reach over outbound
	// HTTP; empty means none.
	AllowedHosts []string `json:"allowed_hosts"`
	// Idempotent says the function may safely run twice: an asynchronous
	// call that may have run when its worker or the core was lost is run
	// again instead of being marked lost.
	Idempotent bool `json:"idempotent,omitempty"`
}

// Function is one stored function: where it lives, which code it runs and
// what it declared. Version starts at 1 and grows by one at every update.
type Function struct {
	Module    string    `json:"module"`
	Name      string    `json:"name"`
	Owner     string    `json:"owner"`
	Hash      string    `json:"hash"`
	ABI       string    `json:"abi"`
	Size      int64     `json:"size"`
	Metadata  Metadata  `json:"metadata"`
	Events    []Event   `json:"events,omitempty"` // triggers (package triggers)
	Sinks     []Sink    `json:"sinks,omitempty"`
	Version   uint64    `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// codeRef counts the function versions that use one code blob, so the blob
// is deleted with its last reference.
type codeRef struct {
	Refs int64 `json:"refs"`
	Size int64 `json:"size"`
}

// Store is the core's database. It is safe for concurrent use: mutations
// are serialised so that their read-check-write sequences are atomic;
// reads of small records (token index, subjects, modules, functions) are
// served from an in-memory copy that every commit invalidates, since the
// Store is the database's only writer. That keeps pebble off the
// invocation path, where each request authenticates and loads its function.
type Store struct {
	db    *pebble.DB
	mu    sync.Mutex // serialises mutations
	now   func() time.Time
	cache readCache

	scanned atomic.Int64 // keys visited by scans (see KeysScanned)
}

// readCache holds copies of small values. gen counts commits: a value
// read from pebble is kept only if no commit happened since the read
// began, so a commit can never be hidden by a stale copy. Lookups take no
// lock: the current generation is an immutable snapshot pointer whose maps
// are sync.Maps (read-mostly: filled once per key, then only read), and a
// commit replaces the whole snapshot.
type readCache struct {
	cur atomic.Pointer[cacheGen]
}

// cacheGen is one generation of the cache: what was read since a commit.
type cacheGen struct {
	gen     uint64
	values  sync.Map     // string → []byte; nil value: known absent
	decoded sync.Map     // string → decoded Function and Subject records
	entries atomic.Int64 // kept values + decoded, bounded by readCacheEntries
}

const (
	readCacheEntries  = 16384
	readCacheMaxValue = 16 << 10
)

func (c *readCache) current() *cacheGen {
	if g := c.cur.Load(); g != nil {
		return g
	}
	c.cur.CompareAndSwap(nil, &cacheGen{})
	return c.cur.Load()
}

func (c *readCache) lookup(key []byte) (v []byte, found bool, gen uint64) {
	g := c.current()
	x, found := g.values.Load(string(key))
	if found {
		v = x.([]byte)
	}
	return v, found, g.gen
}

func (c *readCache) keep(key, v []byte, gen uint64) {
	if len(v) > readCacheMaxValue {
		return
	}
	g := c.current()
	// A commit since the read began replaced the generation: the value may
	// be stale, so it is not kept. A commit racing this store replaces g,
	// which is then dropped with whatever it holds.
	if g.gen != gen || g.entries.Add(1) > readCacheEntries {
		return
	}
	g.values.Store(string(key), v)
}

// invalidate runs after every commit.
func (c *readCache) invalidate() {
	for {
		old := c.current()
		if c.cur.CompareAndSwap(old, &cacheGen{gen: old.gen + 1}) {
			return
		}
	}
}

func (c *readCache) lookupDecoded(key []byte) (v any, found bool, gen uint64) {
	g := c.current()
	v, found = g.decoded.Load(string(key))
	return v, found, g.gen
}

func (c *readCache) keepDecoded(key []byte, v any, gen uint64) {
	g := c.current()
	if g.gen != gen || g.entries.Add(1) > readCacheEntries {
		return
	}
	g.decoded.Store(string(key), v)
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
	opts := &pebble.Options{Logger: pebbleLogger{logger.With("component", "pebble")},
		CacheSize: o.CacheBytes, MemTableSize: uint64(max(o.MemTableBytes, 0)), MaxOpenFiles: o.MaxOpenFiles,
		MemTableStopWritesThreshold: 2}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open database in %s: %w", dir, err)
	}
	s := &Store{db: db, now: func() time.Time { return time.Now().UTC() }}
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

// Close flushes and closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close database: %w", err)
	}
	return nil
}

// Key constructors: the only place that knows the layout in doc.go.
func keySchema() []byte               { return []byte("meta/schema") }
func keyBootstrapped() []byte         { return []byte("meta/bootstrapped") }
func keyModule(m string) []byte       { return []byte("m/" + m) }
func keyFunction(m, f string) []byte  { return []byte("f/" + m + "/" + f) }
func prefixFunctions(m string) []byte { return []byte("f/" + m + "/") }
func keyCode(h string) []byte         { return []byte("c/" + h) }
func keyRef(h string) []byte          { return []byte("r/" + h) }
func keySubject(n string) []byte      { return []byte("s/" + n) }
func keyToken(h string) []byte        { return []byte("t/" + h) }

// prefixEnd returns the smallest key greater than every key with prefix p.
// Prefixes here always end in "/", which is never 0xff.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	end[len(end)-1]++
	return end
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
	if err := json.Unmarshal(v, into); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
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

func setJSON(b *pebble.Batch, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Set(key, data, nil)
}

// commit applies b with fsync: the caller acknowledges the write only after.
func (s *Store) commit(b *pebble.Batch) error {
	err := b.Commit(pebble.Sync)
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

// HashCode returns the content address of code: its sha256 in lower-case hex.
func HashCode(code []byte) string {
	sum := sha256.Sum256(code)
	return hex.EncodeToString(sum[:])
}

// ---- modules ----

// CreateModule stores a new module owned by owner.
func (s *Store) CreateModule(name, owner string) (Module, error) {
	if err := CheckName("module", name); err != nil {
		return Module{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == DefaultModule {
		return Module{}, fmt.Errorf("module %q: %w", name, ErrExists)
	}
	ok, err := s.exists(keyModule(name))
	if err != nil {
		return Module{}, err
	}
	if ok {
		return Module{}, fmt.Errorf("module %q: %w", name, ErrExists)
	}
	m := Module{Name: name, Owner: owner, CreatedAt: s.now()}
	b := s.db.NewBatch()
	defer b.Close()
	if err := setJSON(b, keyModule(name), m); err != nil {
		return Module{}, err
	}
	return m, s.commit(b)
}

// GetModule returns a module; the default module always exists.
func (s *Store) GetModule(name string) (Module, error) {
	if name == DefaultModule {
		return Module{Name: DefaultModule}, nil
	}
	var m Module
	if err := s.getJSON(keyModule(name), &m); err != nil {
		return Module{}, fmt.Errorf("module %q: %w", name, err)
	}
	return m, nil
}

// ListModules returns every module, the default one first, then by name.
func (s *Store) ListModules() ([]Module, error) {
	mods := []Module{{Name: DefaultModule}}
	err := s.scan([]byte("m/"), func(k, v []byte) error {
		var m Module
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("decode %s: %w", k, err)
		}
		mods = append(mods, m)
		return nil
	})
	return mods, err
}

// FunctionChange pairs the record before and after a change, for telling
// workers what to fetch and what to evict. Old is nil for a creation, New is
// nil for a deletion.
type FunctionChange struct {
	Old *Function
	New *Function
}

// RenameModule renames a module and moves its functions, in one batch. It
// returns every function's old and new record.
func (s *Store) RenameModule(from, to string) ([]FunctionChange, error) {
	if from == DefaultModule || to == DefaultModule {
		return nil, fmt.Errorf("rename %q to %q: %w", from, to, ErrDefaultModule)
	}
	if err := CheckName("module", to); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var m Module
	if err := s.getJSON(keyModule(from), &m); err != nil {
		return nil, fmt.Errorf("module %q: %w", from, err)
	}
	if from == to {
		return nil, nil
	}
	ok, err := s.exists(keyModule(to))
	if err != nil {
		return nil, err
	}
	if ok {
		return nil, fmt.Errorf("module %q: %w", to, ErrExists)
	}
	fns, err := s.listFunctions(from)
	if err != nil {
		return nil, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	m.Name = to
	if err := b.Delete(keyModule(from), nil); err != nil {
		return nil, err
	}
	if err := setJSON(b, keyModule(to), m); err != nil {
		return nil, err
	}
	changes := make([]FunctionChange, 0, len(fns))
	now := s.now()
	for i := range fns {
		old := fns[i]
		nf := old
		nf.Module = to
		nf.UpdatedAt = now
		if err := b.Delete(keyFunction(from, old.Name), nil); err != nil {
			return nil, err
		}
		if err := setJSON(b, keyFunction(to, nf.Name), nf); err != nil {
			return nil, err
		}
		changes = append(changes, FunctionChange{Old: &old, New: &nf})
	}
	return changes, s.commit(b)
}

// DeleteModule deletes a module with all its functions, releasing their
// code, in one batch. It returns the deleted functions.
func (s *Store) DeleteModule(name string) ([]Function, error) {
	if name == DefaultModule {
		return nil, fmt.Errorf("delete %q: %w", name, ErrDefaultModule)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ok, err := s.exists(keyModule(name))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("module %q: %w", name, ErrNotFound)
	}
	fns, err := s.listFunctions(name)
	if err != nil {
		return nil, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	deltas := map[string]int64{}
	for _, f := range fns {
		deltas[f.Hash]--
		if err := b.Delete(keyFunction(name, f.Name), nil); err != nil {
			return nil, err
		}
	}
	if err := s.applyRefs(b, deltas, nil); err != nil {
		return nil, err
	}
	if err := b.Delete(keyModule(name), nil); err != nil {
		return nil, err
	}
	return fns, s.commit(b)
}

// ---- functions ----

// applyRefs adds deltas to the reference counts of code blobs in batch b,
// writing newCode[hash] for a blob that gets its first reference and
// deleting a blob that loses its last. Callers hold s.mu.
func (s *Store) applyRefs(b *pebble.Batch, deltas map[string]int64, newCode map[string][]byte) error {
	hashes := make([]string, 0, len(deltas))
	for h := range deltas {
		hashes = append(hashes, h)
	}
	sort.Strings(hashes)
	for _, h := range hashes {
		d := deltas[h]
		if d == 0 {
			continue
		}
		var ref codeRef
		err := s.getJSON(keyRef(h), &ref)
		switch {
		case errors.Is(err, ErrNotFound):
			code, ok := newCode[h]
			if !ok || d < 0 {
				return fmt.Errorf("code %s has no reference count: database inconsistent", h)
			}
			if err := b.Set(keyCode(h), code, nil); err != nil {
				return err
			}
			ref = codeRef{Size: int64(len(code))}
		case err != nil:
			return err
		}
		ref.Refs += d
		if ref.Refs <= 0 {
			if err := b.Delete(keyCode(h), nil); err != nil {
				return err
			}
			if err := b.Delete(keyRef(h), nil); err != nil {
				return err
			}
			continue
		}
		if err := setJSON(b, keyRef(h), ref); err != nil {
			return err
		}
	}
	return nil
}

// NewFunction is what a client uploads to create a function.
type NewFunction struct {
	Module, Name, Owner string
	Code                []byte
	ABI                 string
	Metadata            Metadata
	Events              []Event
	Sinks               []Sink
}

// CreateFunction stores a function and its code (once per hash) in one
// synced batch. The module must exist.
func (s *Store) CreateFunction(nf NewFunction) (Function, error) {
	if err := CheckName("function", nf.Name); err != nil {
		return Function{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.GetModule(nf.Module); err != nil {
		return Function{}, err
	}
	ok, err := s.exists(keyFunction(nf.Module, nf.Name))
	if err != nil {
		return Function{}, err
	}
	if ok {
		return Function{}, fmt.Errorf("function %q in module %q: %w", nf.Name, nf.Module, ErrExists)
	}
	now := s.now()
	f := Function{
		Module: nf.Module, Name: nf.Name, Owner: nf.Owner,
		Hash: HashCode(nf.Code), ABI: nf.ABI, Size: int64(len(nf.Code)),
		Metadata: nf.Metadata, Version: 1, CreatedAt: now, UpdatedAt: now,
		Events: nf.Events,
		Sinks:  nf.Sinks,
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.applyRefs(b, map[string]int64{f.Hash: 1}, map[string][]byte{f.Hash: nf.Code}); err != nil {
		return Function{}, err
	}
	if err := setJSON(b, keyFunction(f.Module, f.Name), f); err != nil {
		return Function{}, err
	}
	return f, s.commit(b)
}

// FunctionUpdate changes a function. A nil Code keeps the code (and ABI); a
// nil Metadata keeps the metadata; a nil Events keeps the triggers (an
// empty list removes them).
type FunctionUpdate struct {
	Code     []byte
	ABI      string
	Metadata *Metadata
	Events   *[]Event
	// Sinks, if not nil, replaces the function's sinks (empty: none).
	Sinks *[]Sink
}

// UpdateFunction applies u to a function, bumps its version and moves the
// code reference, in one synced batch.
func (s *Store) UpdateFunction(module, name string, u FunctionUpdate) (FunctionChange, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, err := s.GetFunction(module, name)
	if err != nil {
		return FunctionChange{}, err
	}
	nf := old
	nf.Version++
	nf.UpdatedAt = s.now()
	deltas := map[string]int64{}
	var newCode map[string][]byte
	if u.Code != nil {
		nf.Hash = HashCode(u.Code)
		nf.Size = int64(len(u.Code))
		nf.ABI = u.ABI
		deltas[old.Hash]--
		deltas[nf.Hash]++
		newCode = map[string][]byte{nf.Hash: u.Code}
	}
	if u.Metadata != nil {
		nf.Metadata = *u.Metadata
	}
	if u.Events != nil {
		nf.Events = *u.Events
	}
	if u.Sinks != nil {
		nf.Sinks = *u.Sinks
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.applyRefs(b, deltas, newCode); err != nil {
		return FunctionChange{}, err
	}
	if err := setJSON(b, keyFunction(module, name), nf); err != nil {
		return FunctionChange{}, err
	}
	return FunctionChange{Old: &old, New: &nf}, s.commit(b)
}

// GetFunction returns one function's record.
func (s *Store) GetFunction(module, name string) (Function, error) {
	var f Function
	if err := s.getJSON(keyFunction(module, name), &f); err != nil {
		return Function{}, fmt.Errorf("function %q in module %q: %w", name, module, err)
	}
	return f, nil
}

// ListFunctions returns a module's functions by name (a prefix scan). The
// module must exist.
func (s *Store) ListFunctions(module string) ([]Function, error) {
	if _, err := s.GetModule(module); err != nil {
		return nil, err
	}
	return s.listFunctions(module)
}

func (s *Store) listFunctions(module string) ([]Function, error) {
	var fns []Function
	err := s.scan(prefixFunctions(module), func(k, v []byte) error {
		var f Function
		if err := json.Unmarshal(v, &f); err != nil {
			return fmt.Errorf("decode %s: %w", k, err)
		}
		fns = append(fns, f)
		return nil
	})
	return fns, err
}

// DeleteFunction deletes a function and releases its code, in one synced
// batch. It returns the deleted record.
func (s *Store) DeleteFunction(module, name string) (Function, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.GetFunction(module, name)
	if err != nil {
		return Function{}, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Delete(keyFunction(module, name), nil); err != nil {
		return Function{}, err
	}
	if err := s.applyRefs(b, map[string]int64{f.Hash: -1}, nil); err != nil {
		return Function{}, err
	}
	return f, s.commit(b)
}

// Code returns the code stored under a sha256 hex hash. Workers that lack a
// function's code fetch it through this.
func (s *Store) Code(hash string) ([]byte, error) {
	v, err := s.get(keyCode(hash))
	if err != nil {
		return nil, fmt.Errorf("code %s: %w", hash, err)
	}
	return v, nil
}

// CodeRefs returns how many function versions reference the code with hash,
// 0 if it is not stored.
func (s *Store) CodeRefs(hash string) (int64, error) {
	var ref codeRef
	err := s.getJSON(keyRef(hash), &ref)
	if errors.Is(err, ErrNotFound) {
		return 0, nil
	}
	return ref.Refs, err
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
	if err := s.scan([]byte("m/"), func(k, v []byte) error { st.Modules++; return nil }); err != nil {
		return st, err
	}
	if err := s.scan([]byte("f/"), func(k, v []byte) error { st.Functions++; return nil }); err != nil {
		return st, err
	}
	err := s.scan([]byte("r/"), func(k, v []byte) error {
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

// pebbleLogger routes pebble's log lines into slog. Pebble's informational
// chatter goes to Debug so the core is quiet by default.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...))
}

// Fatalf logs and exits, as pebble's default logger does: pebble calls it
// only when it cannot continue safely.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error("fatal: " + fmt.Sprintf(format, args...))
	os.Exit(1)
}

// jsonUnmarshal decodes the value v stored at key k.
func jsonUnmarshal(k, v []byte, into any) error {
	if err := json.Unmarshal(v, into); err != nil {
		return fmt.Errorf("decode %s: %w", k, err)
	}
	return nil
}
