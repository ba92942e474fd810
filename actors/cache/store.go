// Package cache keeps a worker's compiled function versions. Store is the
// policy (plain Go): compiled modules by code hash, the raw code on disk so
// a restarted worker recompiles from wazero's on-disk compile cache without
// asking the core, and least-recently-used eviction beyond a byte budget.
// Actor is the worker's cache process that receives Cache and Evict.
package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/edgefaas/edgefaas/wasm"
)

// ErrNoCode means the worker has never been given this version's code.
var ErrNoCode = errors.New("no code for this function version")

// Store is safe for concurrent use.
type Store struct {
	engine   *wasm.Engine
	dir      string // raw code, one file per hash; "" keeps nothing on disk
	maxBytes int

	mu      sync.Mutex
	entries map[string]*entry
	bytes   int
	changed func()
}

type entry struct {
	size     int
	lastUsed time.Time
}

// NewStore keeps code under dir (created if needed) and at most maxBytes of
// code compiled (default 256 MiB); changed is called after every addition
// or eviction (the reporter tells the cores).
func NewStore(engine *wasm.Engine, dir string, maxBytes int, changed func()) (*Store, error) {
	if maxBytes <= 0 {
		maxBytes = 256 << 20
	}
	if changed == nil {
		changed = func() {}
	}
	s := &Store{engine: engine, dir: dir, maxBytes: maxBytes, entries: map[string]*entry{}, changed: changed}
	if dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("code directory: %w", err)
		}
	}
	return s, nil
}

func (s *Store) path(hash string) string { return filepath.Join(s.dir, hash+".wasm") }

// Put compiles code (if not compiled yet) for limits and keeps it.
func (s *Store) Put(ctx context.Context, code []byte, limits wasm.Limits) (*wasm.Module, error) {
	hash := wasm.Hash(code)
	m, err := s.engine.Compile(ctx, code, limits)
	if err != nil {
		return nil, fmt.Errorf("compile %s: %w", hash[:12], err)
	}
	if s.dir != "" {
		if _, err := os.Stat(s.path(hash)); err != nil {
			tmp := s.path(hash) + ".tmp"
			if err := os.WriteFile(tmp, code, 0o600); err == nil {
				os.Rename(tmp, s.path(hash))
			}
		}
	}
	s.mu.Lock()
	added := false
	if _, ok := s.entries[hash]; !ok {
		s.entries[hash] = &entry{size: len(code)}
		s.bytes += len(code)
		added = true
	}
	s.entries[hash].lastUsed = time.Now()
	victims := s.overBudget(hash)
	s.mu.Unlock()
	for _, v := range victims {
		s.engine.Evict(ctx, v)
	}
	if added || len(victims) > 0 {
		s.changed()
	}
	return m, nil
}

// overBudget picks least recently used versions beyond the byte budget,
// never keep; the caller holds s.mu.
func (s *Store) overBudget(keep string) []string {
	if s.bytes <= s.maxBytes {
		return nil
	}
	type lru struct {
		hash string
		t    time.Time
	}
	all := make([]lru, 0, len(s.entries))
	for h, e := range s.entries {
		if h != keep {
			all = append(all, lru{h, e.lastUsed})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].t.Before(all[j].t) })
	var victims []string
	for _, v := range all {
		if s.bytes <= s.maxBytes {
			break
		}
		s.bytes -= s.entries[v.hash].size
		delete(s.entries, v.hash)
		victims = append(victims, v.hash)
	}
	return victims
}

// Get returns the compiled version for hash: from memory, or compiled again
// from the code kept on disk (fast: wazero's compile cache). ErrNoCode
// means the code must come from the core; ErrBadHash that hash is not a
// sha256 (nothing is read or removed).
func (s *Store) Get(ctx context.Context, hash string, limits wasm.Limits) (*wasm.Module, error) {
	if !ValidHash(hash) {
		return nil, ErrBadHash
	}
	if m, ok := s.engine.Lookup(hash, limits); ok {
		s.mu.Lock()
		if e, ok := s.entries[hash]; ok {
			e.lastUsed = time.Now()
		}
		s.mu.Unlock()
		return m, nil
	}
	if s.dir == "" {
		return nil, ErrNoCode
	}
	code, err := os.ReadFile(s.path(hash))
	if err != nil {
		return nil, ErrNoCode
	}
	if wasm.Hash(code) != hash { // a torn or corrupted file
		os.Remove(s.path(hash))
		return nil, ErrNoCode
	}
	return s.Put(ctx, code, limits)
}

// Evict drops a version from memory and disk; an invalid hash names
// nothing and is ignored.
func (s *Store) Evict(ctx context.Context, hash string) {
	if !ValidHash(hash) {
		return
	}
	s.mu.Lock()
	e, ok := s.entries[hash]
	if ok {
		s.bytes -= e.size
		delete(s.entries, hash)
	}
	s.mu.Unlock()
	s.engine.Evict(ctx, hash)
	if s.dir != "" {
		os.Remove(s.path(hash))
	}
	if ok {
		s.changed()
	}
}

// Hashes lists the versions compiled now.
func (s *Store) Hashes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.entries))
	for h := range s.entries {
		out = append(out, h)
	}
	sort.Strings(out)
	return out
}
