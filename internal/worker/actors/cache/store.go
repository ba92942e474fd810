// Package cache keeps a worker's function versions. Store is the policy
// (plain Go): the raw code of every version pushed or run, on disk (so a
// worker recompiles from wazero's on-disk compile cache without asking the
// core), at most a byte budget of it, least recently used dropped first.
// Compiled modules are a cache in the engine's memory budget (the engine
// closes the least recently used ones, or those idle for long, and Get
// compiles them again from disk): code pushed ahead of demand is compiled
// only when it fits, or when a core waits for it (wait_for_workers).
// Actor is the worker's cache process that receives Cache and Evict.
package cache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/edgefaas/edgefaas/internal/syncfile"
	"github.com/edgefaas/edgefaas/internal/wasm"
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

// NewStore keeps code under dir (created if needed), at most maxBytes of it
// (default 256 MiB of wasm); changed is called after every addition or
// eviction (the reporter tells the cores).
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
		if err := s.reopen(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// reopen takes back the code a previous run kept in s.dir, so that a
// restarted worker reports it (the core's placement prefers a worker that
// has a version, and would otherwise never send the restarted one a call
// while another has it). A version's file is trusted by its name here and
// checked against its hash when it is read (Get); a torn temporary file
// or a file that names no hash is removed. The least recently written
// versions beyond the byte budget are dropped, as at run time.
func (s *Store) reopen() error {
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("code directory: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		hash, isCode := strings.CutSuffix(name, ".wasm")
		info, err := de.Info()
		if err != nil || !de.Type().IsRegular() || !isCode || !ValidHash(hash) {
			if de.Type().IsRegular() {
				os.Remove(filepath.Join(s.dir, name))
			}
			continue
		}
		s.entries[hash] = &entry{size: int(info.Size()), lastUsed: info.ModTime()}
		s.bytes += int(info.Size())
	}
	for _, v := range s.overBudget("") {
		os.Remove(s.path(v))
	}
	return nil
}

func (s *Store) path(hash string) string { return filepath.Join(s.dir, hash+".wasm") }

// Put compiles code (if not compiled yet) for limits and keeps it.
func (s *Store) Put(ctx context.Context, code []byte, limits wasm.Limits) (*wasm.Module, error) {
	m, release, err := s.PutHeld(ctx, code, limits)
	if err != nil {
		return nil, err
	}
	release()
	return m, nil
}

// PutHeld is Put for a call about to run: the module comes back held
// until release, so no other compile closes it first
// (wasm.Engine.CompileHeld).
func (s *Store) PutHeld(ctx context.Context, code []byte, limits wasm.Limits) (*wasm.Module, func(), error) {
	hash := wasm.Hash(code)
	m, release, err := s.engine.CompileHeld(ctx, code, limits)
	if err != nil {
		return nil, nil, fmt.Errorf("compile %s: %w", hash[:12], err)
	}
	s.keep(ctx, hash, code)
	return m, release, nil
}

// Push keeps code pushed by a core ahead of any call: on disk at once, and
// compiled when mustCompile (a core waits until a worker can run it
// without compiling) or when it fits in the engine's code budget without
// displacing another module; otherwise it is compiled on first demand.
// compiled reports which. Without a code directory it is always compiled
// (there is nowhere else to keep it).
func (s *Store) Push(ctx context.Context, code []byte, limits wasm.Limits, mustCompile bool) (compiled bool, err error) {
	if mustCompile || s.dir == "" || s.engine.CodeFits(len(code)) {
		if _, err := s.Put(ctx, code, limits); err != nil {
			return false, err
		}
		return true, nil
	}
	// The core validated it at upload; a broken file fails at first demand.
	s.keep(ctx, wasm.Hash(code), code)
	return false, nil
}

// keep writes code to disk and records it, dropping the least recently
// used versions beyond the byte budget.
func (s *Store) keep(ctx context.Context, hash string, code []byte) {
	if s.dir != "" {
		if _, err := os.Stat(s.path(hash)); err != nil {
			tmp := s.path(hash) + ".tmp"
			// Paced: a module of several MiB arrives as its compile
			// begins; written at once it would be page cache the worker's
			// memory cgroup cannot reclaim through the compile.
			if err := syncfile.WritePaced(tmp, code, 0o600); err == nil {
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
		if s.dir != "" {
			os.Remove(s.path(v))
		}
	}
	if added || len(victims) > 0 {
		s.changed()
	}
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
	m, release, err := s.GetHeld(ctx, hash, limits)
	if err != nil {
		return nil, err
	}
	release()
	return m, nil
}

// GetHeld is Get for a call about to run: the module comes back held
// until release (see PutHeld).
func (s *Store) GetHeld(ctx context.Context, hash string, limits wasm.Limits) (*wasm.Module, func(), error) {
	if !ValidHash(hash) {
		return nil, nil, ErrBadHash
	}
	if m, release, ok := s.engine.LookupHeld(hash, limits); ok {
		s.mu.Lock()
		if e, ok := s.entries[hash]; ok {
			e.lastUsed = time.Now()
		}
		s.mu.Unlock()
		return m, release, nil
	}
	if s.dir == "" {
		return nil, nil, ErrNoCode
	}
	code, err := os.ReadFile(s.path(hash))
	if err != nil {
		return nil, nil, ErrNoCode
	}
	if wasm.Hash(code) != hash { // a torn or corrupted file
		os.Remove(s.path(hash))
		return nil, nil, ErrNoCode
	}
	return s.PutHeld(ctx, code, limits)
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

// Hashes lists the versions this worker can run without being sent the
// code: kept on disk, or (without a code directory) compiled now.
func (s *Store) Hashes() []string {
	s.mu.Lock()
	out := make([]string, 0, len(s.entries))
	for h := range s.entries {
		out = append(out, h)
	}
	s.mu.Unlock()
	if s.dir == "" {
		kept := out[:0]
		for _, h := range out {
			if s.engine.Has(h) {
				kept = append(kept, h)
			}
		}
		out = kept
	}
	sort.Strings(out)
	return out
}
