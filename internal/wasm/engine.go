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

	instMem  *budget       // linear memory of live instances (MemoryBudget - CodeBudget)
	codeMem  *budget       // compiled modules and compilations in progress (CodeBudget)
	compiles chan struct{} // MaxCompiles
	total    *total        // instMem + codeMem, with its high-water mark
	returned signal        // fired when an instance returns to a pool while calls wait for memory

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
	reruns                            atomic.Int64
	codeEvictions, idleReclaimed      atomic.Int64
	live                              atomic.Int64
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

	// MemoryBudget is Config.MemoryBudget (0: unbounded): what the node
	// gave the engine, reported beside what it uses.
	MemoryBudget int64
	// MemoryReserved is what is reserved from the budget now: the linear
	// memory granted to live instances (running or idle in a pool) plus
	// CodeBytes. It never exceeds a non-zero MemoryBudget.
	MemoryReserved int64
	// MemoryReservedPeak is the most MemoryReserved has ever been, so a
	// test or an operator can check the budget held under load.
	MemoryReservedPeak int64
	// CodeBytes is the estimated real memory of the compiled modules held
	// now and of compilations in progress (machine code plus the decoded
	// module, about CodeBytesPerWasmByte times the code's size).
	CodeBytes int64
	// InstancesLive counts instances alive now, running or idle.
	InstancesLive int64
	// CodeEvictions counts compiled modules closed to stay within the code
	// budget or after CodeIdleTTL unused; IdleReclaimed counts idle pooled
	// instances closed early because a call needed their memory.
	CodeEvictions, IdleReclaimed int64
	// Reruns counts calls run a second time because their guest was
	// refused memory by the node's budget before any outbound request.
	Reruns int64
	// LongWaits counts the times a long-running guest waited for one of
	// the long slots (slots.go): its CPU share given to another long guest
	// so that one CPU stays free of them.
	LongWaits int64
}

// CodeBytesPerWasmByte estimates a compiled module's real memory from its
// code size. Measured with wazero v1.12.0's optimizing compiler on amd64
// for the Go example hello (3.2 MB of wasm): 12.9 MB of machine code (the
// on-disk cache entry) plus 2.5 MB of decoded module on the Go heap, an RSS
// growth of 17-19 MB per compiled module: about 6 bytes per wasm byte.
const CodeBytesPerWasmByte = 6

// compileBytesPerWasmByte is the extra memory a compilation takes while it
// runs (the compiler's working set, released when it ends). Measured: a
// peak of 40-53 MB of heap in use compiling the 3.2 MB hello from source,
// 14 MB loading it from the disk cache; the reservation takes the middle.
const compileBytesPerWasmByte = 6

// codeOverhead is the fixed part of a compiled module (tables, function
// metadata), which dominates for small C modules.
const codeOverhead = 256 << 10

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
	t := &total{}
	e := &Engine{
		cfg:       cfg,
		admission: newAdmission(cfg.MaxConcurrent, cfg.MaxQueue),
		slots:     newEngineSlots(cfg),
		log:       slog.Default().With("component", "wasm"),
		total:     t,
		instMem:   &budget{limit: cfg.MemoryBudget - cfg.CodeBudget, total: t},
		codeMem:   &budget{limit: cfg.CodeBudget, total: t},
		compiles:  make(chan struct{}, cfg.MaxCompiles),
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
	life     *life // shared by every view of the module (withLimits)
}

// life lets invocations hold a module open while Evict retires it: the
// compiled code is closed once the calls in flight have finished, and
// calls that come later see ErrEvicted at once instead of a closed module
// (they never wait behind the calls in flight). It also holds what every
// view of the module shares: its warm pools and its memory figures.
type life struct {
	mu       sync.Mutex
	idle     *sync.Cond // signalled when inflight drops to 0
	inflight int
	retiring bool // set at once by Evict or the code cache, before the close waits
	closed   bool

	key       moduleKey
	codeBytes int64        // reserved from the code budget
	lastUsed  atomic.Int64 // unix nanoseconds of the last Lookup or call
	peak      atomic.Int64 // the most linear memory an instance ended a call with

	poolsMu sync.Mutex
	pools   map[string]*pool // funless ABI: warm instances per owner
}

func newLife(key moduleKey, codeBytes int64) *life {
	l := &life{key: key, codeBytes: codeBytes, pools: map[string]*pool{}}
	l.idle = sync.NewCond(&l.mu)
	l.touch()
	return l
}

func (l *life) touch() { l.lastUsed.Store(time.Now().UnixNano()) }

func (l *life) acquire() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.retiring {
		return false
	}
	l.inflight++
	l.touch()
	return true
}

func (l *life) release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight--; l.inflight == 0 {
		l.idle.Broadcast()
	}
}

// retire marks the module so that no new call starts; false if it is
// already retiring.
func (l *life) retire() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.retiring {
		return false
	}
	l.retiring = true
	return true
}

// unused reports whether the code cache may close the module now.
func (l *life) unused() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inflight == 0 && !l.retiring && !l.closed
}

// pool returns the warm pool of owner, creating it.
// pool returns the warm pool of owner, creating it, and counts the caller
// as its user until it calls pool.done.
func (l *life) pool(owner string) *pool {
	l.poolsMu.Lock()
	defer l.poolsMu.Unlock()
	p, ok := l.pools[owner]
	if !ok {
		p = &pool{}
		l.pools[owner] = p
	}
	p.hold()
	return p
}

// allPools lists the module's pools, dropping the empty ones nobody uses,
// so that an idle function keeps nothing.
func (l *life) allPools() []*pool {
	l.poolsMu.Lock()
	defer l.poolsMu.Unlock()
	out := make([]*pool, 0, len(l.pools))
	for o, p := range l.pools {
		if p.users.Load() == 0 && p.size() == 0 {
			delete(l.pools, o)
			continue
		}
		out = append(out, p)
	}
	return out
}

// Compile compiles code for the given limits, or returns the module compiled
// before for the same code and memory limit. A limit above the engine's
// maximum fails with ErrLimit; code that is not a supported module fails
// like Inspect. Compiling is admitted against the code budget: it reserves
// the module's estimated size (closing unused compiled modules, least
// recently used first, to make room) and waits for a compile slot.
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
		c.mod.life.touch()
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
		if e.modules[key] == c {
			delete(e.modules, key)
		}
		e.mu.Unlock()
		return nil, err
	}
	return c.mod, nil
}

// CodeBytes is the memory a compiled module of n bytes of wasm is counted for.
func CodeBytes(n int) int64 { return codeOverhead + int64(n)*CodeBytesPerWasmByte }

func (e *Engine) compile(ctx context.Context, r wazero.Runtime, code []byte, key moduleKey, limits Limits) (*Module, error) {
	// Admission: a compile slot, then the code's memory and the compiler's
	// working set from the code budget (one compile at a time when the
	// budget is small: each one takes tens of MiB while it runs).
	select {
	case e.compiles <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting to compile: %w", ctx.Err())
	}
	defer func() { <-e.compiles }()
	keep := e.codeMem.fit(CodeBytes(len(code)))
	work := e.codeMem.fit(keep+int64(len(code))*compileBytesPerWasmByte) - keep
	if err := e.reserveCode(ctx, keep+work); err != nil {
		return nil, err
	}
	defer e.codeMem.release(work)

	start := time.Now()
	cctx := experimental.WithCompilationWorkers(ctx, e.cfg.CompilationWorkers)
	cm, err := r.CompileModule(cctx, code)
	if err != nil {
		e.codeMem.release(keep)
		return nil, fmt.Errorf("%w: %v", ErrCompile, err)
	}
	info, err := describe(cm)
	if err != nil {
		cm.Close(ctx)
		e.codeMem.release(keep)
		return nil, err
	}
	e.stats.compiles.Add(1)
	m := &Module{Hash: key.hash, Info: info, Limits: limits, engine: e, compiled: cm, rt: r, life: newLife(key, keep)}
	e.log.Debug("compiled", "hash", key.hash[:12], "abi", info.ABI, "pages", key.pages, "bytes", keep, "took", time.Since(start))
	return m, nil
}

// codeWait bounds how long a compile waits for compiled modules in use to
// become unused: a call must be answered (ErrBusy) even while other
// functions are busy without a pause.
const codeWait = 30 * time.Second

// reserveCode reserves n bytes of the code budget, closing unused compiled
// modules (least recently used first) while it does not fit, and waiting
// (up to codeWait) for calls in flight to leave a module when every one is
// in use.
func (e *Engine) reserveCode(ctx context.Context, n int64) error {
	giveUp := time.Now().Add(codeWait)
	for {
		if time.Now().After(giveUp) {
			return fmt.Errorf("%w (code budget of %d MiB held by modules in use)", ErrBusy, e.cfg.CodeBudget>>20)
		}
		if e.codeMem.tryReserve(n) {
			return nil
		}
		if e.evictCode(n) {
			continue
		}
		// Everything compiled is in use: wait for a call to end somewhere.
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for code memory: %w", ctx.Err())
		case <-e.stop:
			return ErrClosed
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// evictCode closes the least recently used unused module to make room for
// need bytes of code; false when no module can be closed.
func (e *Engine) evictCode(need int64) bool {
	limit, used, _ := e.codeMem.snapshot()
	if limit == 0 || limit-used >= need {
		return true
	}
	e.mu.Lock()
	var victim *Module
	for _, c := range e.modules {
		select {
		case <-c.done:
		default:
			continue
		}
		if c.mod == nil || !c.mod.life.unused() {
			continue
		}
		if victim == nil || c.mod.life.lastUsed.Load() < victim.life.lastUsed.Load() {
			victim = c.mod
		}
	}
	if victim != nil {
		delete(e.modules, victim.life.key)
	}
	e.mu.Unlock()
	if victim == nil {
		return false
	}
	e.stats.codeEvictions.Add(1)
	e.log.Debug("compiled module closed for room", "hash", victim.Hash[:12], "need", need)
	victim.life.retire()
	victim.close(context.Background())
	return true
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
	c.mod.life.touch()
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
// instances. Invocations in flight finish first; invocations that start
// from now on fail with ErrEvicted at once.
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
			c.mod.life.retire()
			go c.mod.close(context.Background()) // after the calls in flight
		}
	}
}

// close waits for the invocations in flight, then frees the module: its
// warm instances, its compiled code and the code budget it held.
func (m *Module) close(ctx context.Context) {
	l := m.life
	l.mu.Lock()
	l.retiring = true
	for l.inflight > 0 {
		l.idle.Wait()
	}
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	l.poolsMu.Lock()
	pools := l.pools
	l.pools = map[string]*pool{}
	l.poolsMu.Unlock()
	for _, p := range pools {
		p.closeAll(ctx)
	}
	m.compiled.Close(ctx)
	m.engine.codeMem.release(l.codeBytes)
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	n := len(e.modules)
	e.mu.Unlock()
	_, inst, _ := e.instMem.snapshot()
	_, code, _ := e.codeMem.snapshot()
	return Stats{
		Compiles:           e.stats.compiles.Load(),
		Modules:            n,
		Invocations:        e.stats.invocations.Load(),
		Failures:           e.stats.failures.Load(),
		InstancesCreated:   e.stats.instancesCreated.Load(),
		InstancesReused:    e.stats.instancesReused.Load(),
		InstancesRecycled:  e.stats.instancesRecycled.Load(),
		Running:            e.admission.running(),
		Queued:             e.admission.queued(),
		MemoryBudget:       e.cfg.MemoryBudget,
		MemoryReserved:     inst + code,
		MemoryReservedPeak: e.total.high.Load(),
		CodeBytes:          code,
		InstancesLive:      e.stats.live.Load(),
		CodeEvictions:      e.stats.codeEvictions.Load(),
		IdleReclaimed:      e.stats.idleReclaimed.Load(),
		Reruns:             e.stats.reruns.Load(),
		LongWaits:          e.longWaits(),
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

// ready lists the compiled modules (not those still compiling).
func (e *Engine) ready() []*Module {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*Module, 0, len(e.modules))
	for _, c := range e.modules {
		select {
		case <-c.done:
			if c.mod != nil {
				out = append(out, c.mod)
			}
		default:
		}
	}
	return out
}

// reapIdle closes idle instances after PoolIdleTTL (so pools shrink to
// zero) and compiled modules unused for CodeIdleTTL.
func (e *Engine) reapIdle() {
	defer close(e.done)
	every := min(e.cfg.PoolIdleTTL, e.cfg.CodeIdleTTL) / 2
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		e.reap(time.Now())
	}
}

func (e *Engine) reap(now time.Time) {
	for _, m := range e.ready() {
		for _, p := range m.life.allPools() {
			p.reap(context.Background(), now.Add(-e.cfg.PoolIdleTTL))
		}
		if m.life.lastUsed.Load() < now.Add(-e.cfg.CodeIdleTTL).UnixNano() && m.life.unused() {
			e.mu.Lock()
			if c, ok := e.modules[m.life.key]; ok && c.mod == m {
				delete(e.modules, m.life.key)
			}
			e.mu.Unlock()
			e.stats.codeEvictions.Add(1)
			m.life.retire()
			m.close(context.Background())
		}
	}
}

// reclaimIdle closes idle pooled instances, least recently used first,
// until need bytes of the instance budget are free (or none is left):
// idle instances count against the budget, so a call that needs memory
// is never refused while idle ones hold it.
func (e *Engine) reclaimIdle(need int64) {
	for {
		limit, used, _ := e.instMem.snapshot()
		if limit == 0 || limit-used >= need {
			return
		}
		var oldest *pool
		var at time.Time
		for _, m := range e.ready() {
			m.life.poolsMu.Lock()
			for _, p := range m.life.pools {
				if t, ok := p.oldest(); ok && (oldest == nil || t.Before(at)) {
					oldest, at = p, t
				}
			}
			m.life.poolsMu.Unlock()
		}
		if oldest == nil || !oldest.closeOldest(context.Background()) {
			return
		}
		e.stats.idleReclaimed.Add(1)
	}
}

func moduleConfig() wazero.ModuleConfig {
	return wazero.NewModuleConfig().
		WithName("").
		WithSysWalltime().
		WithSysNanotime().
		WithSysNanosleep().
		WithRandSource(rand.Reader)
}

// CodeFits reports whether compiling n bytes of wasm now fits in the code
// budget without closing another compiled module: the cache compiles code
// pushed ahead of demand only then (see actors/cache).
func (e *Engine) CodeFits(n int) bool {
	limit, used, _ := e.codeMem.snapshot()
	if limit == 0 {
		return true
	}
	keep := e.codeMem.fit(CodeBytes(n))
	need := e.codeMem.fit(keep + int64(n)*compileBytesPerWasmByte)
	return limit-used >= need
}

// Has reports whether a version is compiled now, for any memory limit.
func (e *Engine) Has(hash string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k := range e.modules {
		if k.hash == hash {
			return true
		}
	}
	return false
}
