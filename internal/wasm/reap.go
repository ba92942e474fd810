package wasm

import (
	"context"
	"time"
)

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
