package wasm

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// instance is one live module instance. A funless-ABI instance serves one
// call at a time and is thrown away after any error. Its account is the
// memory budget it holds while it lives, idle or running.
type instance struct {
	mod    api.Module
	invoke api.Function
	stdio  *instanceWriter
	acct   *account
	mem    *linearMemory
	engine *Engine
	calls  int
	idle   time.Time
}

// close frees the instance's memory and gives its reservation back.
func (in *instance) close(ctx context.Context) {
	if in.mod != nil {
		in.mod.Close(ctx)
	}
	if in.mem != nil {
		in.mem.Free() // wazero frees it on Close; this covers instantiation failures
	}
	in.acct.close()
	in.engine.stats.live.Add(-1)
}

// pool keeps one owner's idle instances of a function version warm. It is
// lazy (nothing until the first call), bounded (Config.PoolIdle) and
// shrinks to zero (instances idle past Config.PoolIdleTTL are closed, and
// the engine closes idle instances early when a call needs their memory),
// since a Go guest instance costs several MiB.
type pool struct {
	mu    sync.Mutex
	idle  []*instance // most recently used last
	gone  bool
	users atomic.Int64 // calls holding the pool (see life.pool)
	// peak is the most calls that held the pool at once since the reaper
	// last looked: how many instances the function's load needs warm.
	peak atomic.Int64
}

// hold counts one more caller and keeps the peak.
func (p *pool) hold() {
	n := p.users.Add(1)
	for {
		old := p.peak.Load()
		if n <= old || p.peak.CompareAndSwap(old, n) {
			return
		}
	}
}

func (p *pool) get() *instance {
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.idle); n > 0 {
		in := p.idle[n-1]
		p.idle = p.idle[:n-1]
		return in
	}
	return nil
}

// done ends a caller's use of the pool (see life.pool).
func (p *pool) done() { p.users.Add(-1) }

// put returns an instance; false means the caller must close it. The pool
// keeps up to keep idle instances, or as many as the most calls that held
// it at once lately if more: a function whose calls come 6 at a time keeps
// 6 warm, since a Go instance costs milliseconds to make and a returned
// instance is taken again at once (with only keep, 16 connections of a Go
// hello made a new instance for one call in four). The idle expiry, the
// decaying peak and the engine's memory admission (which closes idle
// instances when a call needs their memory) shrink it again.
func (p *pool) put(in *instance, keep int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone || len(p.idle) >= max(keep, int(p.peak.Load())) {
		return false
	}
	in.idle = time.Now()
	p.idle = append(p.idle, in)
	return true
}

func (p *pool) reap(ctx context.Context, before time.Time) {
	p.peak.Store(p.users.Load()) // the peak decays: only recent load counts
	p.mu.Lock()
	var old []*instance
	keep := p.idle[:0]
	for _, in := range p.idle {
		if in.idle.Before(before) {
			old = append(old, in)
		} else {
			keep = append(keep, in)
		}
	}
	clear(p.idle[len(keep):])
	p.idle = keep
	p.mu.Unlock()
	for _, in := range old {
		in.close(ctx)
	}
}

// oldest is when the least recently used idle instance went idle.
func (p *pool) oldest() (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) == 0 {
		return time.Time{}, false
	}
	return p.idle[0].idle, true
}

// closeOldest closes the least recently used idle instance.
func (p *pool) closeOldest(ctx context.Context) bool {
	p.mu.Lock()
	if len(p.idle) == 0 {
		p.mu.Unlock()
		return false
	}
	in := p.idle[0]
	p.idle = append(p.idle[:0], p.idle[1:]...)
	p.mu.Unlock()
	in.close(ctx)
	return true
}

func (p *pool) closeAll(ctx context.Context) {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.gone = nil, true
	p.mu.Unlock()
	for _, in := range idle {
		in.close(ctx)
	}
}

// size is the number of idle instances, for tests and reports.
func (p *pool) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}
