package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
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

	jsMu sync.Mutex
	js   map[uint32]*jsShared // the JavaScript engine compiled per runtime (jsscript.go)

	// cacheMax bounds the disk cache (Config.CacheMaxBytes resolved);
	// pruneMu lets one prune run at a time.
	cacheMax int64
	pruneMu  sync.Mutex

	stats counters
	stop  chan struct{}
	done  chan struct{}
}

type counters struct {
	compiles, invocations, failures   atomic.Int64
	instancesCreated, instancesReused atomic.Int64
	instancesRecycled                 atomic.Int64
	reruns                            atomic.Int64
	jsPrepared                        atomic.Int64
	guestSleeps                       atomic.Int64
	codeEvictions, idleReclaimed      atomic.Int64
	live                              atomic.Int64
	cachePruned                       atomic.Int64
	linear                            atomic.Int64 // linear memory committed by live instances, bytes
	childCompiles                     atomic.Int64
	childPeak                         peak // the largest compile child's peak resident size, bytes
}

// peak is a high-water mark.
type peak struct{ v atomic.Int64 }

func (p *peak) raise(n int64) {
	for {
		old := p.v.Load()
		if n <= old || p.v.CompareAndSwap(old, n) {
			return
		}
	}
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
	// JSPrepared counts JavaScript instances whose script's top level
	// ran; the function's other instances started from its template.
	JSPrepared int64
	// GuestSleeps counts the WASI sleeps guests took (poll_oneoff's
	// clock wait): each ends in a wake-up that runs guest code on a CPU
	// slot, so a guest that waits in short steps shows here.
	GuestSleeps     int64
	Running, Queued int // invocations running and waiting now

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
	// LinearMemory is the linear memory those instances have committed
	// now, bytes: the most they can have resident (a page counts in the
	// process's RSS only once the guest touched it).
	LinearMemory int64
	// CodeEvictions counts compiled modules closed to stay within the code
	// budget or after CodeIdleTTL unused; IdleReclaimed counts idle pooled
	// instances closed early because a call needed their memory.
	CodeEvictions, IdleReclaimed int64
	// CachePruned counts disk cache entries deleted to keep the cache
	// within CacheMaxBytes.
	CachePruned int64
	// Reruns counts calls run a second time because their guest was
	// refused memory by the node's budget before any outbound request.
	Reruns int64
	// LongWaits counts the times a long-running guest waited for one of
	// the long slots (slots.go): its CPU share given to another long guest
	// so that one CPU stays free of them.
	LongWaits int64
	// ChildCompiles counts modules compiled from source in a compile
	// child (Config.CompileChild); ChildCompilePeak is the largest peak
	// resident size one of them reached, bytes: memory the node's cgroup
	// held while it ran, never the engine's own process.
	ChildCompiles, ChildCompilePeak int64
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
	t := &total{}
	e := &Engine{
		cfg:       cfg,
		admission: newAdmission(cfg.MaxConcurrent, cfg.MaxConcurrentPerOwner, cfg.MaxQueue, cfg.MaxQueueBytes),
		slots:     newEngineSlots(cfg),
		log:       slog.Default().With("component", "wasm"),
		total:     t,
		instMem:   &budget{limit: cfg.MemoryBudget - cfg.CodeBudget, total: t},
		codeMem:   &budget{limit: cfg.CodeBudget, total: t},
		compiles:  make(chan struct{}, cfg.MaxCompiles),
		runtimes:  map[uint32]wazero.Runtime{},
		modules:   map[moduleKey]*compileCall{},
		js:        map[uint32]*jsShared{},
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
		e.cacheMax = cacheMaxBytes(cfg.CacheDir, cfg.CacheMaxBytes)
		e.pruneCache()
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
	rc := guestRuntimeConfig(e.cfg.Interpreter).WithMemoryLimitPages(pages).WithCompilationCache(e.cache)
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
		JSPrepared:         e.stats.jsPrepared.Load(),
		GuestSleeps:        e.stats.guestSleeps.Load(),
		Running:            e.admission.running(),
		Queued:             e.admission.queued(),
		MemoryBudget:       e.cfg.MemoryBudget,
		MemoryReserved:     inst + code,
		MemoryReservedPeak: e.total.high.Load(),
		CodeBytes:          code,
		InstancesLive:      e.stats.live.Load(),
		LinearMemory:       e.stats.linear.Load(),
		CodeEvictions:      e.stats.codeEvictions.Load(),
		CachePruned:        e.stats.cachePruned.Load(),
		IdleReclaimed:      e.stats.idleReclaimed.Load(),
		Reruns:             e.stats.reruns.Load(),
		LongWaits:          e.longWaits(),
		ChildCompiles:      e.stats.childCompiles.Load(),
		ChildCompilePeak:   e.stats.childPeak.v.Load(),
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

// moduleConfig is every instance's configuration; call returns the call
// the instance runs now (nil between calls), whose end cuts its sleeps
// short (sleepFor).
func (e *Engine) moduleConfig(call func() *callState) wazero.ModuleConfig {
	return wazero.NewModuleConfig().
		WithName("").
		WithSysWalltime().
		WithSysNanotime().
		WithNanosleep(sleepFor(call, &e.stats.guestSleeps)).
		WithRandSource(rand.Reader)
}

// sleepFor is WASI's sleep (poll_oneoff's clock wait: Go's time.Sleep,
// C's nanosleep) for an instance: ns, or less if the call it runs for
// ends first (its timeout, or its caller gone). wazero's own sleep is a
// time.Sleep no context reaches, so a guest asleep past its timeout kept
// its instance and its memory reservation until the sleep ended (an hour,
// for a function with a 1 s timeout that sleeps an hour), although its
// caller had its answer long before. Woken early, the guest is stopped at
// its next termination check. Each sleep is counted in sleeps.
func sleepFor(call func() *callState, sleeps *atomic.Int64) func(ns int64) {
	return func(ns int64) {
		sleeps.Add(1)
		var done <-chan struct{}
		if st := call(); st != nil {
			done = st.done
		}
		if done == nil {
			time.Sleep(time.Duration(ns))
			return
		}
		t := time.NewTimer(time.Duration(ns))
		defer t.Stop()
		select {
		case <-t.C:
		case <-done:
		}
	}
}
