// Package runner is the worker's runner process: it receives wire.Invoke
// from cores, runs the function on the worker's wasm.Engine and answers
// wire.Result to the invoker that asked. Each invocation runs on its own
// goroutine, started on the goroutine that received the message (see
// Receive), so a call is handed off once and nothing waits for a guest.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/edgefaas/edgefaas/internal/actors/trust"
	"github.com/edgefaas/edgefaas/internal/actors/wire"
	"github.com/edgefaas/edgefaas/internal/failure"
	"github.com/edgefaas/edgefaas/internal/wasm"
	"github.com/edgefaas/edgefaas/internal/worker/actors/cache"
)

// Name is the runner's registered name; OverflowName is the process that
// answers "busy" for invocations the runner's full mailbox could not take.
const (
	Name         = wire.RunnerName
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
	// Process returns a live local process by name (the node's
	// ProcessByName): an answer whose runner was restarted while the call
	// ran is sent from its successor.
	Process func(name string) gen.Process
	// Cores are the nodes this worker takes invocations and cancels from;
	// Refusals counts the others (both nil in unit tests: every node).
	Cores    *trust.Cores
	Refusals *trust.Refusals

	calls sync.Map                          // callID → context.CancelFunc of the calls running
	self  atomic.Pointer[gen.ServerProcess] // the live incarnation, for Receive
	once  sync.Once                         // setup
	jobs  chan job                          // to idle callers (unbuffered)
	idle  atomic.Int32                      // callers waiting on jobs
}

// Init keeps the process, so that Receive can start calls from it.
func (a *Actor) Init(p *gen.ServerProcess, _ ...etf.Term) error {
	a.self.Store(p)
	return nil
}

// Terminate stops Receive from starting calls from this incarnation: until
// its successor's Init, invocations wait in the mailbox.
func (a *Actor) Terminate(p *gen.ServerProcess, _ string) { a.self.CompareAndSwap(p, nil) }

// Receive takes wire.Invoke and wire.Cancel on the goroutine that routes
// them (ergo patch 0003: for a remote core, the link's decoder), so a call
// is handed off once, to the goroutine that runs it, and never waits in
// the mailbox or for gen.Server's per-message goroutine. Both are taken
// only from the worker's cores (Cores), and a Cancel only for the calls of
// the core that sends it; the others are refused and counted. Before Init
// (and after Terminate) it leaves the checked ones to the mailbox and
// HandleInfo.
func (a *Actor) Receive(from etf.Pid, msg etf.Term) bool {
	sender := string(from.Node)
	switch m := msg.(type) {
	case wire.Invoke:
		if !a.Cores.Has(sender) {
			a.Refusals.Refuse("invoke", trust.NotACore, sender)
			return true
		}
	case wire.Cancel:
		if !a.Cores.Has(sender) {
			a.Refusals.Refuse("cancel", trust.NotACore, sender)
			return true
		}
		if sender != a.Cores.Local() && m.Core != sender {
			a.Refusals.Refuse("cancel", trust.WrongSender, sender)
			return true
		}
	default:
		return false
	}
	p := a.self.Load()
	if p == nil {
		return false
	}
	switch m := msg.(type) {
	case wire.Invoke:
		a.start(p, m)
	case wire.Cancel:
		a.cancel(m)
	}
	return true
}

// HandleInfo handles wire.Invoke and wire.Cancel that reached the mailbox
// (sent before Init): Receive checked their sender on the way.
func (a *Actor) HandleInfo(p *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	switch m := msg.(type) {
	case wire.Invoke:
		a.start(p, m)
	case wire.Cancel:
		a.cancel(m)
	default:
		a.Log.Warn("runner: unexpected message", "type", fmt.Sprintf("%T", msg), "node", a.Node)
	}
	return gen.ServerStatusOK
}

// maxIdleCallers bounds the goroutines kept waiting for the next call
// (each keeps the stack a guest call grew, ~tens of KiB): more than the
// calls usually running at once on a small worker, few enough to hold
// little memory when idle.
const maxIdleCallers = 32

// job is one call handed to a caller goroutine.
type job struct {
	p      *gen.ServerProcess
	m      wire.Invoke
	ctx    context.Context
	cancel context.CancelFunc
	key    callID
}

// start runs m on a caller goroutine under a context of its own, which
// Cancel, the function's timeout (counted from receipt) and the worker's
// stop end, and answers from p (or its live successor). The goroutine is
// an idle caller if one waits (its stack already grown by earlier guest
// calls: a new goroutine's stack is copied as it grows, ~10% of a worker's
// CPU on the C echo), else a new one.
func (a *Actor) start(p *gen.ServerProcess, m wire.Invoke) {
	a.once.Do(a.setup)
	// Not derived from a.Ctx: a child of a cancellable context takes its
	// parent's lock to register and unregister, one lock for every call of
	// the worker; the worker's stop cancels the calls in a.calls instead.
	var j job
	if m.TimeoutMS > 0 {
		j.ctx, j.cancel = context.WithTimeout(context.Background(), time.Duration(m.TimeoutMS)*time.Millisecond)
	} else {
		j.ctx, j.cancel = context.WithCancel(context.Background())
	}
	j.p, j.m, j.key = p, m, callKey(string(m.ReplyTo.Node), m.ID)
	a.calls.Store(j.key, j.cancel)
	if a.Ctx.Err() != nil {
		j.cancel() // stopped before setup's AfterFunc could see this call
	}
	select {
	case a.jobs <- j:
	default:
		go a.caller(j)
	}
}

// setup makes the idle callers' channel and cancels every call in flight
// when the worker stops.
func (a *Actor) setup() {
	a.jobs = make(chan job)
	context.AfterFunc(a.Ctx, func() {
		a.calls.Range(func(_, c any) bool {
			c.(context.CancelFunc)()
			return true
		})
	})
}

// caller runs j, then waits for another call while fewer than
// maxIdleCallers wait.
func (a *Actor) caller(j job) {
	for {
		res := a.run(j.ctx, j.m)
		a.calls.Delete(j.key)
		j.cancel()
		a.answer(j.p, j.m, res)
		if a.idle.Add(1) > maxIdleCallers {
			a.idle.Add(-1)
			return
		}
		select {
		case j = <-a.jobs:
			a.idle.Add(-1)
		case <-a.Ctx.Done():
			a.idle.Add(-1)
			return
		}
	}
}

func (a *Actor) cancel(m wire.Cancel) {
	if c, ok := a.calls.Load(callKey(m.Core, m.ID)); ok {
		c.(context.CancelFunc)()
	}
}

// callID names a call running here: IDs are unique per core.
type callID struct {
	core string
	id   int
}

func callKey(core string, id int) callID { return callID{core, id} }

// ReplyTarget is where the answer to m goes: the invoker process by name on
// the asking node when the core gave its name (a restarted invoker still
// receives it), else its pid.
func ReplyTarget(m wire.Invoke) any {
	if m.ReplyName != "" {
		return gen.ProcessID{Name: m.ReplyName, Node: string(m.ReplyTo.Node)}
	}
	return m.ReplyTo
}

// answer sends res for m. p is the runner process that received m; if it
// has been restarted meanwhile (its sends fail with ErrProcessTerminated),
// the answer goes out from the live runner, or its overflow answerer.
func (a *Actor) answer(p *gen.ServerProcess, m wire.Invoke, res wire.Result) {
	to := ReplyTarget(m)
	err := p.Send(to, res)
	if err == nil {
		return
	}
	if a.Process != nil {
		for _, name := range []string{Name, OverflowName} {
			if q := a.Process(name); q != nil {
				if err = q.Send(to, res); err == nil {
					return
				}
			}
		}
	}
	a.Log.Warn("runner: answer not sent", "function", m.Function, "node", a.Node, "err", err)
}

// Run executes one invocation under the worker's lifetime; see RunContext.
func (a *Actor) Run(m wire.Invoke) wire.Result { return a.RunContext(a.Ctx, m) }

// RunContext executes one invocation under ctx (the caller's: when it ends,
// the guest is stopped and its slot freed) and returns its answer; it never
// panics back into the actor. The function's timeout starts now: time
// spent waiting for a slot counts against it.
func (a *Actor) RunContext(ctx context.Context, m wire.Invoke) wire.Result {
	if m.TimeoutMS > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(m.TimeoutMS)*time.Millisecond)
		defer cancel()
	}
	return a.run(ctx, m)
}

// run is RunContext under a ctx that already carries the function's
// timeout.
func (a *Actor) run(ctx context.Context, m wire.Invoke) (res wire.Result) {
	res = wire.Result{ID: m.ID, Node: a.Node}
	defer func() {
		if r := recover(); r != nil {
			a.Log.Error("runner: panic", "function", m.Function, "node", a.Node, "panic", r)
			res.Status, res.Error = failure.Runtime.Row().Wire, []byte(fmt.Sprintf("worker %s failed internally", a.Node))
		}
	}()
	limits := wasm.Limits{MemoryPages: uint32(m.MemoryPages), Timeout: time.Duration(m.TimeoutMS) * time.Millisecond}
	// The module is held from here to the call's end: a compile for
	// another function cannot close it before the call begins.
	mod, release, err := a.Store.GetHeld(ctx, m.Hash, limits)
	if errors.Is(err, cache.ErrNoCode) {
		if len(m.Code) == 0 {
			res.Status = wire.StatusNoCode
			return res
		}
		if wasm.Hash(m.Code) != m.Hash {
			res.Status, res.Error = failure.Runtime.Row().Wire, []byte("code does not match its hash")
			return res
		}
		mod, release, err = a.Store.PutHeld(ctx, m.Code, limits)
	}
	if err != nil {
		// A compile that could not be admitted (memory or compile slots)
		// is busy, so the core tries another worker or answers 429; one
		// whose call's deadline passed meanwhile is a timeout, as time
		// waiting for a slot is; any other failure to load the code is the
		// platform's.
		switch {
		case errors.Is(err, wasm.ErrBusy):
			res.Status, res.Error = failure.Busy.Row().Wire, []byte(err.Error())
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			res.Status, res.Error = failure.Timeout.Row().Wire, []byte(fmt.Sprintf("%s did not finish within its timeout (%d ms, time compiling its code included)", m.Function, m.TimeoutMS))
		default:
			res.Status, res.Error = failure.Runtime.Row().Wire, []byte(err.Error())
		}
		return res
	}
	defer release()
	reserve := int64(m.MemoryPages) * wasm.PageSize
	a.Usage.Reserved.Add(reserve)
	out, err := a.Engine.Invoke(ctx, mod, wasm.Invocation{
		Function: m.Function, Input: m.Args, AllowedHosts: wire.SplitList(m.AllowedHosts), Owner: m.Owner,
	})
	a.Usage.Reserved.Add(-reserve)
	if out != nil {
		res.Logs, res.DurationUS = wire.JoinList(out.Logs), int(out.Duration.Microseconds())
	}
	switch {
	case err == nil:
		res.Output = out.Output
	case errors.Is(err, wasm.ErrEvicted):
		// Replaced or deleted while this call was on its way: nothing ran;
		// the core resends with the code it has (or reloads the function).
		res.Status, res.Error = wire.StatusNoCode, nil
	default:
		res.Status, res.Error = answer(ctx, m, err)
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
			p.Send(ReplyTarget(m), wire.Result{ID: m.ID, Node: o.Node, Status: wire.StatusBusy,
				Error: []byte("worker " + o.Node + " mailbox full")})
		}
	}
	return gen.ServerStatusOK
}

// answer is a failed call's wire status (its failure.Kind's, failure.Table)
// and detail. The engine's function errors, busy refusals and timeouts
// carry their Kind; a deadline that passed while the call waited for a
// slot is a timeout like any other; every other failure is the sandbox's
// (failure.Runtime), which the function's author needs to read.
func answer(ctx context.Context, m wire.Invoke, err error) (int, []byte) {
	var fe *wasm.FunctionError
	switch kind := failure.Of(err); {
	case errors.As(err, &fe):
		return failure.Function.Row().Wire, []byte(fe.Message)
	case kind == failure.Busy, kind == failure.Timeout && errors.Is(err, wasm.ErrTimeout):
		return kind.Row().Wire, []byte(err.Error())
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return failure.Timeout.Row().Wire, []byte(fmt.Sprintf("%s did not finish within its timeout (%d ms, time waiting for a slot included)", m.Function, m.TimeoutMS))
	}
	return failure.Runtime.Row().Wire, []byte(err.Error())
}
