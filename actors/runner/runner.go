// Package runner is the worker's runner process: it receives wire.Invoke
// from cores, runs the function on the worker's wasm.Engine and answers
// wire.Result to the invoker that asked. Each invocation runs on its own
// goroutine, so the process's mailbox loop never waits for a guest.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/edgefaas/edgefaas/actors/cache"
	"github.com/edgefaas/edgefaas/actors/wire"
	"github.com/edgefaas/edgefaas/wasm"
)

// Name is the runner's registered name; OverflowName is the process that
// answers "busy" for invocations the runner's full mailbox could not take.
const (
	Name         = "runner"
	OverflowName = "runner_overflow"
)

// Usage is the memory the worker's running invocations have declared, read
// by the reporter for the worker's free memory.
type Usage struct {
	Reserved atomic.Int64
}

// Actor runs invocations.
type Actor struct {
	gen.Server
	Engine *wasm.Engine
	Store  *cache.Store
	Usage  *Usage
	Node   string
	Log    *slog.Logger
	Ctx    context.Context // cancelled when the worker stops
}

// HandleInfo handles wire.Invoke.
func (a *Actor) HandleInfo(p *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	m, ok := msg.(wire.Invoke)
	if !ok {
		a.Log.Warn("runner: unexpected message", "type", fmt.Sprintf("%T", msg), "node", a.Node)
		return gen.ServerStatusOK
	}
	go func() { p.Send(m.ReplyTo, a.Run(m)) }()
	return gen.ServerStatusOK
}

// Run executes one invocation and returns its answer; it never panics
// back into the actor.
func (a *Actor) Run(m wire.Invoke) (res wire.Result) {
	res = wire.Result{ID: m.ID, Node: a.Node}
	defer func() {
		if r := recover(); r != nil {
			a.Log.Error("runner: panic", "function", m.Function, "node", a.Node, "panic", r)
			res.Status, res.Error = wire.StatusError, []byte(fmt.Sprintf("worker %s failed internally", a.Node))
		}
	}()
	limits := wasm.Limits{MemoryPages: uint32(m.MemoryPages), Timeout: time.Duration(m.TimeoutMS) * time.Millisecond}
	mod, err := a.Store.Get(a.Ctx, m.Hash, limits)
	if errors.Is(err, cache.ErrNoCode) {
		if len(m.Code) == 0 {
			res.Status = wire.StatusNoCode
			return res
		}
		if wasm.Hash(m.Code) != m.Hash {
			res.Status, res.Error = wire.StatusError, []byte("code does not match its hash")
			return res
		}
		mod, err = a.Store.Put(a.Ctx, m.Code, limits)
	}
	if err != nil {
		res.Status, res.Error = wire.StatusError, []byte(err.Error())
		return res
	}
	reserve := int64(m.MemoryPages) * wasm.PageSize
	a.Usage.Reserved.Add(reserve)
	out, err := a.Engine.Invoke(a.Ctx, mod, wasm.Invocation{
		Function: m.Function, Input: m.Args, AllowedHosts: wire.SplitList(m.AllowedHosts),
	})
	a.Usage.Reserved.Add(-reserve)
	if out != nil {
		res.Logs, res.DurationUS = wire.JoinList(out.Logs), int(out.Duration.Microseconds())
	}
	var fe *wasm.FunctionError
	switch {
	case err == nil:
		res.Output = out.Output
	case errors.As(err, &fe):
		res.Status, res.Error = wire.StatusFunctionError, []byte(fe.Message)
	case errors.Is(err, wasm.ErrBusy):
		res.Status, res.Error = wire.StatusBusy, []byte(err.Error())
	case errors.Is(err, wasm.ErrEvicted):
		// Replaced or deleted while this call was on its way: nothing ran;
		// the core resends with the code it has (or reloads the function).
		res.Status, res.Error = wire.StatusNoCode, nil
	case errors.Is(err, wasm.ErrTimeout):
		res.Status, res.Error = wire.StatusTimeout, []byte(err.Error())
	default:
		res.Status, res.Error = wire.StatusError, []byte(err.Error())
	}
	if err != nil {
		a.Log.Debug("invocation failed", "function", m.Function, "node", a.Node, "err", err)
	}
	return res
}

// Overflow answers busy for every invocation that overflowed the runner's
// mailbox (ergo's fallback), so that none is dropped silently.
type Overflow struct {
	gen.Server
	Node string
}

// HandleInfo handles gen.MessageFallback.
func (o *Overflow) HandleInfo(p *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	if fb, ok := msg.(gen.MessageFallback); ok {
		if m, ok := fb.Message.(wire.Invoke); ok {
			p.Send(m.ReplyTo, wire.Result{ID: m.ID, Node: o.Node, Status: wire.StatusBusy,
				Error: []byte("worker " + o.Node + " mailbox full")})
		}
	}
	return gen.ServerStatusOK
}
