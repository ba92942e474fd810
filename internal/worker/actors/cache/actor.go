package cache

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/edgefaas/edgefaas/internal/actors/trust"
	"github.com/edgefaas/edgefaas/internal/actors/wire"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// Name is the cache process's registered name on a worker node.
const Name = wire.CacheName

// Actor is the worker's cache process: it keeps the code cores push
// (wire.Cache), acknowledges it (wire.Cached) and drops evicted versions
// (wire.Evict). A push a core waits for (ReplyTo set: wait_for_workers) is
// compiled before the acknowledgement, so the worker can run it without
// compiling (later, at worst, from wazero's on-disk compile cache); other
// pushes (prefetch at join) are compiled only if they fit in the engine's
// code budget, else on first demand. Compiling takes up to a second, so it
// happens off the mailbox loop; the process never blocks.
type Actor struct {
	gen.Server
	Store *Store
	Node  string
	Log   *slog.Logger
	// Process returns a live local process by name: an acknowledgement
	// whose cache process was restarted during the compile is sent from
	// its successor.
	Process func(name string) gen.Process
	// Cores are the nodes this worker takes pushes and evictions from;
	// Refusals counts the others (both nil in unit tests: every node).
	Cores    *trust.Cores
	Refusals *trust.Refusals

	compiling sync.Mutex // one pushed compile at a time (each already uses every core)
}

// Receive checks Cache and Evict against their sender before the mailbox
// (ergo patch 0003): only the worker's cores may push or evict code; the
// others' are refused and counted. What passes goes to the mailbox.
func (a *Actor) Receive(from etf.Pid, msg etf.Term) bool {
	var kind string
	switch msg.(type) {
	case wire.Cache:
		kind = "cache"
	case wire.Evict:
		kind = "evict"
	default:
		return false
	}
	if a.Cores.Has(string(from.Node)) {
		return false
	}
	a.Refusals.Refuse(kind, trust.NotACore, string(from.Node))
	return true
}

// HandleInfo handles Cache and Evict (checked by Receive).
func (a *Actor) HandleInfo(p *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	switch m := msg.(type) {
	case wire.Cache:
		go a.compile(p, m)
	case wire.Evict:
		if !ValidHash(m.Hash) {
			a.Log.Warn("cache: evict with an invalid hash refused", "hash", short(m.Hash), "node", a.Node)
			break
		}
		a.Store.Evict(context.Background(), m.Hash)
		a.Log.Debug("evicted", "hash", short(m.Hash), "node", a.Node)
	default:
		a.Log.Warn("cache: unexpected message", "type", fmt.Sprintf("%T", msg))
	}
	return gen.ServerStatusOK
}

func (a *Actor) compile(p *gen.ServerProcess, m wire.Cache) {
	// Pushes come in bursts (a joining worker is sent its prefetch list):
	// compiling them one by one leaves CPU for the invocations meanwhile.
	a.compiling.Lock()
	defer a.compiling.Unlock()
	ack := wire.Cached{ID: m.ID, Node: a.Node, Hash: m.Hash}
	if !ValidHash(m.Hash) {
		ack.Error = []byte(ErrBadHash.Error())
	} else if got := wasm.Hash(m.Code); got != m.Hash {
		ack.Error = []byte("code does not match its hash " + short(m.Hash))
	} else if compiled, err := a.Store.Push(context.Background(), m.Code, wasm.Limits{MemoryPages: uint32(m.MemoryPages)}, m.ReplyTo != (etf.Pid{})); err != nil {
		ack.Error = []byte(err.Error())
		a.Log.Warn("compile failed", "hash", short(m.Hash), "node", a.Node, "err", err)
	} else {
		a.Log.Debug("cached", "hash", short(m.Hash), "node", a.Node, "compiled", compiled)
	}
	if m.ReplyTo != (etf.Pid{}) {
		err := p.Send(ackTarget(m), ack)
		if err != nil && a.Process != nil {
			if q := a.Process(Name); q != nil {
				err = q.Send(ackTarget(m), ack)
			}
		}
		if err != nil {
			a.Log.Warn("cache: acknowledgement not sent", "hash", short(m.Hash), "node", a.Node, "err", err)
		}
	}
}

// ackTarget is where the acknowledgement of m goes: the core's process by
// name on the asking node when the core gave its name (a message sent by
// name carries its sender, which the core checks the acknowledgement
// against), else its pid.
func ackTarget(m wire.Cache) any {
	if m.ReplyName != "" {
		return gen.ProcessID{Name: m.ReplyName, Node: string(m.ReplyTo.Node)}
	}
	return m.ReplyTo
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// OverflowName is the registered name of the cache's overflow answerer.
const OverflowName = "cache_overflow"

// Overflow takes what overflowed the cache's mailbox (ergo's fallback): an
// evict is carried out (Store is shared), and a push whose sender waits is
// answered with an error, so an upload waiting for workers learns at once
// that this worker did not take the code (it gets it on first demand).
type Overflow struct {
	gen.Server
	Store *Store
	Node  string
	Log   *slog.Logger
}

// HandleInfo handles gen.MessageFallback.
func (o *Overflow) HandleInfo(p *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	fb, ok := msg.(gen.MessageFallback)
	if !ok {
		return gen.ServerStatusOK
	}
	switch m := fb.Message.(type) {
	case wire.Evict:
		o.Store.Evict(context.Background(), m.Hash)
	case wire.Cache:
		if m.ReplyTo != (etf.Pid{}) {
			p.Send(ackTarget(m), wire.Cached{ID: m.ID, Node: o.Node, Hash: m.Hash,
				Error: []byte("worker " + o.Node + " busy: its cache mailbox is full")})
		}
	default:
		o.Log.Warn("cache overflow: message dropped", "type", fmt.Sprintf("%T", fb.Message))
	}
	return gen.ServerStatusOK
}
