package wasm

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
)

type moduleKey struct {
	hash  string
	pages uint32
}

// Module is one compiled function version, ready to invoke.
type Module struct {
	Hash   string // sha256 of the code
	Info   ModuleInfo
	Limits Limits // effective limits

	engine   *Engine
	compiled wazero.CompiledModule
	rt       wazero.Runtime
	life     *life     // shared by every view of the module (withLimits)
	script   *jsScript // a JavaScript function's script (ABIJS), run by the engine module
	js       *jsShared // a JavaScript function's shared engine (compiled is its)
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
	codeBytes int64                      // reserved from the code budget
	lastUsed  atomic.Int64               // unix nanoseconds of the last Lookup or call
	peak      atomic.Int64               // the most linear memory an instance ended a call with
	image     *dataImage                 // the data segments, mapped copy-on-write by each instance
	template  atomic.Pointer[jsTemplate] // a JavaScript function's prepared memory (jstemplate.go)

	poolsMu sync.Mutex
	pools   map[string]*pool // funless and js ABIs: warm instances per owner
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

// hold acquires the module for a caller about to call it (if want) and
// returns the release; ErrEvicted if the module is closing.
func (l *life) hold(want bool) (func(), error) {
	if !want {
		return func() {}, nil
	}
	if !l.acquire() {
		return nil, ErrEvicted
	}
	return l.release, nil
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

// retireIfUnused retires the module if no call holds it, in one step, so
// that a call cannot take it between the check and the retirement.
func (l *life) retireIfUnused() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight != 0 || l.retiring || l.closed {
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
	if m.js != nil {
		m.engine.releaseEngine(ctx, m.js, l.key.pages)
	} else {
		m.compiled.Close(ctx)
	}
	l.image.close()
	if t := l.template.Load(); t != nil {
		t.image.close()
	}
	m.engine.codeMem.release("", l.codeBytes)
}
