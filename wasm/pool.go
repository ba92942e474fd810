package wasm

import (
	"context"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"
)

// instance is one live funless-ABI module instance. It serves one call at
// a time and is thrown away after any error.
type instance struct {
	mod    api.Module
	invoke api.Function
	stdio  *instanceWriter
	calls  int
	idle   time.Time
}

// pool keeps a function version's idle instances warm. It is lazy (nothing
// until the first call), bounded (Config.PoolIdle) and shrinks (instances
// idle past Config.PoolIdleTTL are closed), since a Go guest instance costs
// several MiB.
type pool struct {
	mu   sync.Mutex
	idle []*instance // most recently used last
	gone bool
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

// put returns an instance; false means the caller must close it.
func (p *pool) put(in *instance, max int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.gone || len(p.idle) >= max {
		return false
	}
	in.idle = time.Now()
	p.idle = append(p.idle, in)
	return true
}

func (p *pool) reap(ctx context.Context, before time.Time) {
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
	p.idle = keep
	p.mu.Unlock()
	for _, in := range old {
		in.mod.Close(ctx)
	}
}

func (p *pool) closeAll(ctx context.Context) {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.gone = nil, true
	p.mu.Unlock()
	for _, in := range idle {
		in.mod.Close(ctx)
	}
}

// size is the number of idle instances, for tests and reports.
func (p *pool) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}
