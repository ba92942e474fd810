package wasm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
)

// compileCall lets concurrent Compile calls of one version share one compilation.
type compileCall struct {
	done chan struct{}
	mod  *Module
	err  error
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

// Hash is the key of a function version: the hex sha256 of its code.
func Hash(code []byte) string {
	sum := sha256.Sum256(code)
	return hex.EncodeToString(sum[:])
}

// Compile compiles code for the given limits, or returns the module compiled
// before for the same code and memory limit. A limit above the engine's
// maximum fails with ErrLimit; code that is not a supported module fails
// like Inspect. Compiling is admitted against the code budget: it reserves
// the module's estimated size (closing unused compiled modules, least
// recently used first, to make room) and waits for a compile slot.
func (e *Engine) Compile(ctx context.Context, code []byte, limits Limits) (*Module, error) {
	m, _, err := e.compileFor(ctx, code, limits, false)
	return m, err
}

// CompileHeld is Compile for a call about to run: the module comes back
// held, as a call in flight holds it, until release. Without the hold, a
// compile for another function waiting for the compile slot took it next
// and closed this module to make room (while the other functions run it
// is the only unused one, however new) before its call began: the core
// resent the code, the same happened again, and a neighbour's call was
// refused as busy. ErrEvicted if the module was already closing.
func (e *Engine) CompileHeld(ctx context.Context, code []byte, limits Limits) (m *Module, release func(), err error) {
	return e.compileFor(ctx, code, limits, true)
}

// compileFor is Compile, the module held for the caller if hold.
func (e *Engine) compileFor(ctx context.Context, code []byte, limits Limits, hold bool) (*Module, func(), error) {
	limits = limits.orElse(e.cfg.Defaults)
	if err := limits.within(e.cfg.Maxima); err != nil {
		return nil, nil, err
	}
	key := moduleKey{Hash(code), limits.MemoryPages}
	code, script, err := scriptModule(code)
	if err != nil {
		return nil, nil, err
	}
	if err := checkHeader(code); err != nil {
		return nil, nil, err
	}

	e.mu.Lock()
	for {
		if e.closed {
			e.mu.Unlock()
			return nil, nil, ErrClosed
		}
		c, ok := e.modules[key]
		if !ok {
			break
		}
		e.mu.Unlock()
		<-c.done
		if c.err != nil {
			return nil, nil, c.err
		}
		c.mod.life.touch()
		if release, err := c.mod.life.hold(hold); err == nil {
			return c.mod.withLimits(limits), release, nil
		}
		// Closed for room or evicted since it was found (and taken off
		// the map first): look again, and compile it anew.
		e.mu.Lock()
	}
	c := &compileCall{done: make(chan struct{})}
	e.modules[key] = c
	r, err := e.runtime(ctx, limits.MemoryPages)
	e.mu.Unlock()

	if err == nil {
		c.mod, err = e.compile(ctx, r, code, script, key, limits, hold)
	}
	c.err = err
	close(c.done)
	if err != nil {
		e.mu.Lock()
		if e.modules[key] == c {
			delete(e.modules, key)
		}
		e.mu.Unlock()
		return nil, nil, err
	}
	release := func() {}
	if hold {
		release = c.mod.life.release
	}
	return c.mod, release, nil
}

// CodeBytes is the memory a compiled module of n bytes of wasm is counted for.
func CodeBytes(n int) int64 { return codeOverhead + int64(n)*CodeBytesPerWasmByte }

// A JavaScript function (script not nil) shares the engine module compiled
// once per runtime (see sharedEngine) and is counted for its script only.
// hold: the module is returned held (CompileHeld), the hold taken before
// the compile slot is freed for the next compile.
func (e *Engine) compile(ctx context.Context, r wazero.Runtime, code []byte, script *jsScript, key moduleKey, limits Limits, hold bool) (*Module, error) {
	// Admission: a compile slot, then the code's memory and the compiler's
	// working set from the code budget (one compile at a time when the
	// budget is small: each one takes tens of MiB while it runs).
	select {
	case e.compiles <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting to compile: %w", ctx.Err())
	}
	defer func() { <-e.compiles }()
	var m *Module
	var err error
	if script != nil {
		m, err = e.compileScript(ctx, r, code, script, key, limits)
	} else {
		m, err = e.compileWasm(ctx, r, code, key, limits)
	}
	if err == nil && hold {
		m.life.acquire() // new: nothing can have retired it
	}
	return m, err
}

// compileWasm compiles a WebAssembly module under the compile slot.
func (e *Engine) compileWasm(ctx context.Context, r wazero.Runtime, code []byte, key moduleKey, limits Limits) (*Module, error) {
	keep := e.codeMem.fit(CodeBytes(len(code)))
	work := e.codeMem.fit(keep+int64(len(code))*compileBytesPerWasmByte) - keep
	if err := e.reserveCode(ctx, keep+work); err != nil {
		return nil, err
	}
	defer e.codeMem.release("", work)
	// The compiler's working set is garbage once it returns: several times
	// the module's size, which the Go runtime would otherwise keep for
	// minutes (its scavenger returns idle heap slowly) and count against
	// nothing. Return it before its reservation is released.
	defer debug.FreeOSMemory()

	start := time.Now()
	cctx := experimental.WithCompilationWorkers(ctx, e.cfg.CompilationWorkers)
	// A module's data goes to an image its instances map (dataimage.go);
	// wazero compiles the rest. Without an image, the module as it is.
	var img *dataImage
	if rest, segs := splitData(code); segs != nil {
		var err error
		if img, err = newDataImage(e.cfg.CacheDir, segs); err == nil {
			code = rest
		} else {
			e.log.Warn("data image not made: instances copy their data", "hash", key.hash[:12], "err", err)
		}
	}
	if err := e.compileApart(ctx, code, key); err != nil {
		img.close()
		e.codeMem.release("", keep)
		return nil, err
	}
	cm, err := compileModule(cctx, r, code)
	if err != nil {
		img.close()
		e.codeMem.release("", keep)
		return nil, fmt.Errorf("%w: %v", ErrCompile, err)
	}
	info, err := describe(cm)
	if err != nil {
		img.close()
		cm.Close(ctx)
		e.codeMem.release("", keep)
		return nil, err
	}
	e.stats.compiles.Add(1)
	e.pruneCache()
	m := &Module{Hash: key.hash, Info: info, Limits: limits, engine: e, compiled: cm, rt: r, life: newLife(key, keep)}
	m.life.image = img
	e.log.Debug("compiled", "hash", key.hash[:12], "abi", info.ABI, "pages", key.pages, "bytes", keep, "took", time.Since(start))
	return m, nil
}

// compileChildMinBudget is the smallest memory budget whose engine
// compiles in a child. Below it the child is a second Go runtime in the
// node's cgroup, with a heap of its own beside the worker's: in a 64 MiB
// worker the child's compile and the worker's load of its entry took the
// cgroup to its limit and the kernel killed the child, where a compile in
// process shares the worker's one Go memory limit and fits (tests/budget
// TestGoExamplesOnWorkerIn64MiB). It is where one compile worker and one
// compile at a time start (config.go).
const compileChildMinBudget = 1 << 30

// compileApart compiles code into the disk cache in a compile child
// (compilechild.go), if the engine has one, so that compileModule loads it
// from there. A child that fails to start or refuses the module leaves the
// compile to this process (which words the module's error); one killed,
// most likely out of memory, fails the compile: this process would fare
// no better.
func (e *Engine) compileApart(ctx context.Context, code []byte, key moduleKey) error {
	if len(e.cfg.CompileChild) == 0 || e.cfg.CacheDir == "" || e.cfg.Interpreter ||
		(e.cfg.MemoryBudget > 0 && e.cfg.MemoryBudget < compileChildMinBudget) {
		return nil
	}
	err := e.compileInChild(ctx, code, key.pages)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errChildKilled):
		return fmt.Errorf("%w: %v", ErrBusy, err)
	case ctx.Err() != nil:
		return err
	}
	e.log.Warn("compiling in process", "hash", key.hash[:12], "err", err)
	return nil
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
		if e.codeMem.tryReserve("", n) {
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
	if victim == nil {
		e.mu.Unlock()
		return false
	}
	// A call may have taken it since it was seen unused (CompileHeld,
	// LookupHeld): then it stays, and the caller looks again.
	if !victim.life.retireIfUnused() {
		e.mu.Unlock()
		return true
	}
	delete(e.modules, victim.life.key)
	e.mu.Unlock()
	e.stats.codeEvictions.Add(1)
	e.log.Debug("compiled module closed for room", "hash", victim.Hash[:12], "need", need)
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

// LookupHeld is Lookup for a call about to run: the module comes back
// held until release (see CompileHeld); not found if it is closing.
func (e *Engine) LookupHeld(hash string, limits Limits) (m *Module, release func(), ok bool) {
	m, ok = e.Lookup(hash, limits)
	if !ok {
		return nil, nil, false
	}
	release, err := m.life.hold(true)
	if err != nil {
		return nil, nil, false
	}
	return m, release, true
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

// compileModule is wazero's CompileModule with a panic of the compiler
// made the module's error (the compiler's own goroutines recover theirs:
// patches/README.md), so a module that trips the compiler fails to
// compile instead of ending the node.
func compileModule(ctx context.Context, r wazero.Runtime, code []byte) (cm wazero.CompiledModule, err error) {
	defer func() {
		if p := recover(); p != nil {
			cm, err = nil, fmt.Errorf("compiler panic: %v", p)
		}
	}()
	return r.CompileModule(ctx, code)
}
