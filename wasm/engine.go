package wasm

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
)

// Engine is a worker's WebAssembly runtime. It is safe for concurrent use.
type Engine struct {
	cfg       Config
	cache     wazero.CompilationCache
	admission *admission
	slots     *cpuSlots // guest code's CPU slots (slots.go)
	log       *slog.Logger

	mu       sync.Mutex
	closed   bool
	runtimes map[uint32]wazero.Runtime // one per memory limit: the limit is runtime-wide in wazero
	modules  map[moduleKey]*compileCall

	stats counters
	stop  chan struct{}
	done  chan struct{}
}

type moduleKey struct {
	hash  string
	pages uint32
}

// compileCall lets concurrent Compile calls of one version share one compilation.
type compileCall struct {
	done chan struct{}
	mod  *Module
	err  error
}

type counters struct {
	compiles, invocations, failures   atomic.Int64
	instancesCreated, instancesReused atomic.Int64
	instancesRecycled                 atomic.Int64
}

// Stats are an engine's counters since it started, for metrics and tests.
type Stats struct {
	Compiles          int64 // modules compiled (from source or from the disk cache)
	Modules           int   // compiled modules held now
	Invocations       int64 // invocations started
	Failures          int64 // invocations that ended with an error
	InstancesCreated  int64 // instances instantiated
	InstancesReused   int64 // invocations served by a warm instance
	InstancesRecycled int64 // warm instances closed after an error, N calls or memory growth
	Running, Queued   int   // invocations running and waiting now
}

// NewEngine starts an engine. With cfg.CacheDir set, compiled code is kept
// there and reused by the next engine on the same directory.
func NewEngine(ctx context.Context, cfg Config) (*Engine, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Defaults.within(cfg.Maxima); err != nil {
		return nil, fmt.Errorf("default limits: %w", err)
	}
	if cfg.Outbound == nil {
		cfg.Outbound = denyAll{}
	}
	e := &Engine{
		cfg:       cfg,
		admission: newAdmission(cfg.MaxConcurrent, cfg.MaxQueue),
		slots:     newEngineSlots(cfg),
		log:       slog.Default().With("component", "wasm"),
		runtimes:  map[uint32]wazero.Runtime{},
		modules:   map[moduleKey]*compileCall{},
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if cfg.CacheDir != "" {
		if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
			return nil, fmt.Errorf("compile cache: %w", err)
		}
		c, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("compile cache %s: %w", cfg.CacheDir, err)
		}
		e.cache = c
	} else {
		e.cache = wazero.NewCompilationCache()
	}
	go e.reapIdle()
	return e, nil
}

// runtime returns the wazero runtime for a memory limit, creating it with
// WASI (nothing granted) and edgefaas's host modules on first use.
// Callers hold e.mu.
func (e *Engine) runtime(ctx context.Context, pages uint32) (wazero.Runtime, error) {
	if r, ok := e.runtimes[pages]; ok {
		return r, nil
	}
	// The compiler and the timeout check: termination.go.
	rc := e.guestRuntimeConfig().WithMemoryLimitPages(pages).WithCompilationCache(e.cache)
	r := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(withGuestScheduling(ctx), r); err != nil {
		r.Close(ctx)
		return nil, fmt.Errorf("instantiate WASI: %w", err)
	}
	if err := instantiateHostModules(ctx, r); err != nil {
		r.Close(ctx)
		return nil, fmt.Errorf("instantiate host modules: %w", err)
	}
	e.runtimes[pages] = r
	return r, nil
}

// Hash is the key of a function version: the hex sha256 of its code.
func Hash(code []byte) string {
	sum := sha256.Sum256(code)
	return hex.EncodeToString(sum[:])
}

// Module is one compiled function version, ready to invoke.
type Module struct {
	Hash   string // sha256 of the code
	Info   ModuleInfo
	Limits Limits // effective limits

	engine   *Engine
	compiled wazero.CompiledModule
	rt       wazero.Runtime
	pool     *pool // funless ABI only
	life     *life // shared by every view of the module (withLimits)
}

// life lets invocations hold a module open while Evict retires it: the
// compiled code is closed once the calls in flight have finished, and
// calls that come later see ErrEvicted instead of a closed module.
type life struct {
	mu       sync.RWMutex
	closed   bool
	retiring atomic.Bool // set at once by Evict, before the close waits
}

func (l *life) acquire() bool {
	l.mu.RLock()
	if l.closed || l.retiring.Load() {
		l.mu.RUnlock()
		return false
	}
	return true
}

func (l *life) release() { l.mu.RUnlock() }

// Compile compiles code for the given limits, or returns the module compiled
// before for the same code and memory limit. A limit above the engine's
// maximum fails with ErrLimit; code that is not a supported module fails
// like Inspect.
func (e *Engine) Compile(ctx context.Context, code []byte, limits Limits) (*Module, error) {
	limits = limits.orElse(e.cfg.Defaults)
	if err := limits.within(e.cfg.Maxima); err != nil {
		return nil, err
	}
	if err := checkHeader(code); err != nil {
		return nil, err
	}
	key := moduleKey{Hash(code), limits.MemoryPages}

	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	if c, ok := e.modules[key]; ok {
		e.mu.Unlock()
		<-c.done
		if c.err != nil {
			return nil, c.err
		}
		return c.mod.withLimits(limits), nil
	}
	c := &compileCall{done: make(chan struct{})}
	e.modules[key] = c
	r, err := e.runtime(ctx, limits.MemoryPages)
	e.mu.Unlock()

	if err == nil {
		c.mod, err = e.compile(ctx, r, code, key, limits)
	}
	c.err = err
	close(c.done)
	if err != nil {
		e.mu.Lock()
		delete(e.modules, key)
		e.mu.Unlock()
		return nil, err
	}
	return c.mod, nil
}

func (e *Engine) compile(ctx context.Context, r wazero.Runtime, code []byte, key moduleKey, limits Limits) (*Module, error) {
	start := time.Now()
	cctx := experimental.WithCompilationWorkers(ctx, e.cfg.CompilationWorkers)
	cm, err := r.CompileModule(cctx, code)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCompile, err)
	}
	info, err := describe(cm)
	if err != nil {
		cm.Close(ctx)
		return nil, err
	}
	e.stats.compiles.Add(1)
	m := &Module{Hash: key.hash, Info: info, Limits: limits, engine: e, compiled: cm, rt: r, life: &life{}}
	if info.ABI == ABIFunless {
		m.pool = &pool{}
	}
	e.log.Debug("compiled", "hash", key.hash[:12], "abi", info.ABI, "pages", key.pages, "took", time.Since(start))
	return m, nil
}

// Lookup returns the module compiled before for hash and the memory limit
// of limits, without the code: the hot path of a worker that already has
// the version.
func (e *Engine) Lookup(hash string, limits Limits) (*Module, bool) {
	limits = limits.orElse(e.cfg.Defaults)
	if limits.within(e.cfg.Maxima) != nil {
		return nil, false
	}
	e.mu.Lock()
	c, ok := e.modules[moduleKey{hash, limits.MemoryPages}]
	e.mu.Unlock()
	if !ok {
		return nil, false
	}
	<-c.done
	if c.err != nil {
		return nil, false
	}
	return c.mod.withLimits(limits), true
}

// withLimits returns a view of m with other non-memory limits; the
// compiled code and warm instances are shared.
func (m *Module) withLimits(l Limits) *Module {
	if m.Limits == l {
		return m
	}
	v := *m
	v.Limits = l
	return &v
}

// Evict drops every compiled copy of a function version and its warm
// instances. Invocations in flight finish first.
func (e *Engine) Evict(ctx context.Context, hash string) {
	e.mu.Lock()
	var victims []*compileCall
	for k, c := range e.modules {
		if k.hash == hash {
			victims = append(victims, c)
			delete(e.modules, k)
		}
	}
	e.mu.Unlock()
	for _, c := range victims {
		<-c.done
		if c.mod != nil {
			c.mod.life.retiring.Store(true)
			go c.mod.close(context.Background()) // after the calls in flight
		}
	}
}

// close waits for the invocations in flight, then frees the module.
func (m *Module) close(ctx context.Context) {
	m.life.mu.Lock()
	defer m.life.mu.Unlock()
	if m.life.closed {
		return
	}
	m.life.closed = true
	if m.pool != nil {
		m.pool.closeAll(ctx)
	}
	m.compiled.Close(ctx)
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	n := len(e.modules)
	e.mu.Unlock()
	return Stats{
		Compiles:          e.stats.compiles.Load(),
		Modules:           n,
		Invocations:       e.stats.invocations.Load(),
		Failures:          e.stats.failures.Load(),
		InstancesCreated:  e.stats.instancesCreated.Load(),
		InstancesReused:   e.stats.instancesReused.Load(),
		InstancesRecycled: e.stats.instancesRecycled.Load(),
		Running:           e.admission.running(),
		Queued:            e.admission.queued(),
	}
}

// Close stops the engine and frees every module; Invoke fails afterwards.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.stop)
	mods := e.modules
	e.modules = nil
	rts := e.runtimes
	e.mu.Unlock()
	<-e.done
	for _, c := range mods {
		<-c.done
		if c.mod != nil {
			c.mod.close(ctx)
		}
	}
	var errs []error
	for _, r := range rts {
		errs = append(errs, r.Close(ctx))
	}
	errs = append(errs, e.cache.Close(ctx))
	return errors.Join(errs...)
}

func (e *Engine) reapIdle() {
	defer close(e.done)
	t := time.NewTicker(e.cfg.PoolIdleTTL / 2)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		e.mu.Lock()
		var pools []*pool
		for _, c := range e.modules {
			select {
			case <-c.done:
				if c.mod != nil && c.mod.pool != nil {
					pools = append(pools, c.mod.pool)
				}
			default:
			}
		}
		e.mu.Unlock()
		for _, p := range pools {
			p.reap(context.Background(), time.Now().Add(-e.cfg.PoolIdleTTL))
		}
	}
}

// moduleConfig is the sandbox every instance gets: no args, no env, no
// files, real clocks (no fake time for a guest to be fooled by), and a
// cryptographic random source (wazero's default is deterministic).
func moduleConfig() wazero.ModuleConfig {
	return wazero.NewModuleConfig().
		WithName("").
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(rand.Reader)
}
