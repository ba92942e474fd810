// Package registry is the core's function registry process: after the API
// commits a change, it pushes new code to every live worker (wire.Cache),
// waits for the first compile acknowledgement when the client asked to
// wait for workers, evicts replaced or deleted versions everywhere
// (wire.Evict, with the right previous hash), and prefetches recent
// functions to a worker that joins.
package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/edgefaas/edgefaas/internal/actors/send"
	"github.com/edgefaas/edgefaas/internal/actors/trust"
	"github.com/edgefaas/edgefaas/internal/actors/wire"
	"github.com/edgefaas/edgefaas/internal/core/actors/scheduler"
	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// Name is the registry's registered name on a core node.
const Name = "registry"

// ErrNoAck means no worker acknowledged the code within AckTimeout.
var ErrNoAck = errors.New("no worker compiled the function in time")

// Distribute is sent locally by the API's notifier; Done receives nil once
// a worker holds the code (or at once when not waiting), or the reason.
type Distribute struct {
	Event cluster.FunctionEvent
	Done  chan error
}

// Prefetch asks for recent functions to be pushed to a worker that joined.
type Prefetch struct{ Node string }

type ackTimeout struct{ ID int }

type waiter struct {
	done      chan error
	remaining int
	errs      []string
}

// Actor is the registry process.
type Actor struct {
	gen.Server
	Store      *storage.Store
	Table      *scheduler.Table
	AckTimeout time.Duration // default 60 s
	// PrefetchCount is how many recently updated functions a joining worker
	// receives (default 16).
	PrefetchCount int
	Log           *slog.Logger
	// Sender gives sends to workers a deadline (nil: ergo's Send, which
	// blocks behind a hung peer, and with it every upload).
	Sender *send.Sender
	// Refusals counts acknowledgements refused because of their sender
	// (nil: not counted).
	Refusals *trust.Refusals

	next    int
	waiting map[int]*waiter

	life   sync.RWMutex // held (read) by every callback; Close takes it
	closed bool
}

// Close waits for a callback in progress to end and makes later ones do
// nothing, so the store can be closed: ergo's node Stop returns before its
// processes have finished their callbacks (pebble panics when closed under
// an open iterator). Call it after stopping the node.
func (a *Actor) Close() {
	a.life.Lock()
	a.closed = true
	a.life.Unlock()
}

// Init resets the state (a restarted registry answers no old waiter: their
// callers time out on their own contexts).
func (a *Actor) Init(_ *gen.ServerProcess, _ ...etf.Term) error {
	if a.AckTimeout <= 0 {
		a.AckTimeout = time.Minute
	}
	if a.PrefetchCount <= 0 {
		a.PrefetchCount = 16
	}
	a.waiting = map[int]*waiter{}
	return nil
}

// Receive checks a compile acknowledgement against its sender before the
// mailbox (ergo patch 0003): a worker acknowledges only for itself, so a
// wire.Cached whose Node is not the sending process's node (one worker
// saying another holds a version, which steers placement to it) is
// refused and counted. Workers acknowledge by name (wire.Cache.ReplyName),
// which carries the sender; one sent to the registry's pid comes without
// it and is refused as unverified. Every message routed to the live
// registry passes here, so the acknowledgements HandleInfo sees were
// checked.
func (a *Actor) Receive(from etf.Pid, msg etf.Term) bool {
	m, ok := msg.(wire.Cached)
	switch {
	case !ok:
		return false
	case from.Node == "":
		a.Refusals.Refuse("cached", trust.Unverified, "")
		return true
	case m.Node != string(from.Node):
		a.Refusals.Refuse("cached", trust.WrongSender, string(from.Node))
		return true
	}
	return false
}

// HandleInfo handles Distribute, Prefetch, wire.Cached and timeouts.
func (a *Actor) HandleInfo(p *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	a.life.RLock()
	defer a.life.RUnlock()
	if a.closed {
		if m, ok := msg.(Distribute); ok {
			m.Done <- errors.New("registry stopped")
		}
		return gen.ServerStatusOK
	}
	switch m := msg.(type) {
	case Distribute:
		a.distribute(p, m)
	case Prefetch:
		a.prefetch(p, m.Node)
	case wire.Cached:
		a.acked(m)
	case ackTimeout:
		if w, ok := a.waiting[m.ID]; ok {
			delete(a.waiting, m.ID)
			w.done <- fmt.Errorf("%w (%s)", ErrNoAck, a.AckTimeout)
		}
	default:
		a.Log.Warn("registry: unexpected message", "type", fmt.Sprintf("%T", msg))
	}
	return gen.ServerStatusOK
}

func (a *Actor) workers() []string {
	ws := a.Table.Workers()
	names := make([]string, len(ws))
	for i, w := range ws {
		names[i] = w.Node
	}
	return names
}

func (a *Actor) distribute(p *gen.ServerProcess, m Distribute) {
	ev := m.Event
	fn := ev.Function
	nodes := a.workers()
	evict := func(hash string) {
		if refs, err := a.Store.CodeRefs(hash); err == nil && refs > 0 {
			return // another function still runs this code
		}
		for _, n := range nodes {
			a.send(p, gen.ProcessID{Name: wire.CacheName, Node: n}, wire.Evict{Hash: hash})
		}
		a.Log.Debug("evicted everywhere", "hash", hash[:12], "workers", len(nodes))
	}
	switch ev.Kind {
	case cluster.FunctionDeleted:
		evict(fn.Hash)
		m.Done <- nil
		return
	case cluster.FunctionUpdated:
		if ev.Previous != nil && ev.Previous.Hash != fn.Hash {
			evict(ev.Previous.Hash)
		}
	}
	if len(nodes) == 0 || (ev.Previous != nil && ev.Previous.Hash == fn.Hash && ev.Kind == cluster.FunctionUpdated && sameMemory(ev)) {
		m.Done <- nil
		return
	}
	code, err := a.Store.Code(fn.Hash)
	if err != nil {
		m.Done <- fmt.Errorf("read code of %s/%s: %w", fn.Module, fn.Name, err)
		return
	}
	a.next++
	id := a.next
	msg := wire.Cache{ID: id, Hash: fn.Hash, Code: code, MemoryPages: int(max(fn.Metadata.Capacity, 0)) * 16}
	if ev.WaitForWorkers {
		msg.ReplyTo, msg.ReplyName = p.Self(), Name
		a.waiting[id] = &waiter{done: m.Done, remaining: len(nodes)}
		p.SendAfter(p.Self(), ackTimeout{id}, a.AckTimeout)
	} else {
		m.Done <- nil
	}
	for _, n := range nodes {
		if err := a.send(p, gen.ProcessID{Name: wire.CacheName, Node: n}, msg); err != nil {
			a.acked(wire.Cached{ID: id, Node: n, Hash: fn.Hash, Error: []byte(err.Error())})
		}
	}
	a.Log.Debug("code pushed", "function", fn.Module+"/"+fn.Name, "hash", fn.Hash[:12], "workers", len(nodes))
}

func sameMemory(ev cluster.FunctionEvent) bool {
	return ev.Previous.Metadata.Capacity == ev.Function.Metadata.Capacity
}

func (a *Actor) acked(m wire.Cached) {
	if len(m.Error) == 0 {
		a.Table.MarkCached(m.Node, m.Hash)
	}
	w, ok := a.waiting[m.ID]
	if !ok {
		return
	}
	if len(m.Error) == 0 {
		delete(a.waiting, m.ID)
		w.done <- nil
		return
	}
	w.errs = append(w.errs, m.Node+": "+string(m.Error))
	if w.remaining--; w.remaining == 0 {
		delete(a.waiting, m.ID)
		w.done <- fmt.Errorf("no worker could compile it: %v", w.errs)
	}
}

// prefetch pushes the most recently updated functions to a new worker, so
// its first invocations are warm.
func (a *Actor) prefetch(p *gen.ServerProcess, node string) {
	mods, err := a.Store.ListModules()
	if err != nil {
		a.Log.Warn("prefetch: list modules", "err", err)
		return
	}
	var fns []storage.Function
	for _, mod := range mods {
		list, err := a.Store.ListFunctions(mod.Name)
		if err != nil {
			continue
		}
		fns = append(fns, list...)
	}
	sort.Slice(fns, func(i, j int) bool { return fns[i].UpdatedAt.After(fns[j].UpdatedAt) })
	seen := map[string]bool{}
	for _, fn := range fns {
		if len(seen) >= a.PrefetchCount || seen[fn.Hash] {
			continue
		}
		seen[fn.Hash] = true
		code, err := a.Store.Code(fn.Hash)
		if err != nil {
			continue
		}
		a.send(p, gen.ProcessID{Name: wire.CacheName, Node: node},
			wire.Cache{Hash: fn.Hash, Code: code, MemoryPages: int(max(fn.Metadata.Capacity, 0)) * 16})
	}
	if len(seen) > 0 {
		a.Log.Info("prefetched functions to worker", "node", node, "count", len(seen))
	}
}

func (a *Actor) send(p gen.Process, to gen.ProcessID, msg any) error {
	if a.Sender == nil {
		return p.Send(to, msg)
	}
	return a.Sender.Send(p, to, msg)
}

// Notifier implements cluster.Notifier by handing events to the registry.
type Notifier struct {
	// Process returns a live local process by name.
	Process func(name string) gen.Process
}

// FunctionChanged waits for the registry's Done or ctx.
func (n *Notifier) FunctionChanged(ctx context.Context, ev cluster.FunctionEvent) error {
	p := n.Process(Name)
	if p == nil {
		return errors.New("registry is restarting")
	}
	done := make(chan error, 1)
	if err := p.Send(p.Self(), Distribute{Event: ev, Done: done}); err != nil {
		return fmt.Errorf("notify registry: %w", err)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// OverflowName is the registered name of the registry's overflow answerer.
const OverflowName = "registry_overflow"

// ErrBusy answers a change the registry's full mailbox could not take.
var ErrBusy = errors.New("registry busy: the change is stored; workers get its code on first demand")

// Overflow answers what overflowed the registry's mailbox (ergo's
// fallback): a Distribute gets ErrBusy at once instead of waiting for its
// context (the change is committed either way; Notifier errors are only
// logged). A lost prefetch or acknowledgement costs a cold first call or the
// waiter's ack timeout, never a lost answer.
type Overflow struct {
	gen.Server
	Log *slog.Logger
}

// HandleInfo handles gen.MessageFallback.
func (o *Overflow) HandleInfo(_ *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	fb, ok := msg.(gen.MessageFallback)
	if !ok {
		return gen.ServerStatusOK
	}
	switch m := fb.Message.(type) {
	case Distribute:
		m.Done <- ErrBusy
	default:
		o.Log.Warn("registry overflow: message dropped", "type", fmt.Sprintf("%T", fb.Message))
	}
	return gen.ServerStatusOK
}
