package invoker

import (
	"fmt"
	"log/slog"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/edgefaas/edgefaas/internal/actors/trust"
	"github.com/edgefaas/edgefaas/internal/actors/wire"
)

// RouterName is the registered name of the i-th invoker process.
func RouterName(i int) string {
	if i >= 0 && i < len(routerNames) {
		return routerNames[i]
	}
	return fmt.Sprintf("invoker_%d", i)
}

// routerNames are the names of the first routers, made once: the hot path
// looks a router up by name on every invocation.
var routerNames = func() (n [64]string) {
	for i := range n {
		n[i] = fmt.Sprintf("invoker_%d", i)
	}
	return n
}()

// Router is an invoker process: workers answer to it, and it hands each
// answer to the goroutine that waits for it.
type Router struct {
	gen.Server
	Pending *Pending
	Log     *slog.Logger
	// Refusals counts answers refused because of their sender (nil: not
	// counted).
	Refusals *trust.Refusals
}

// Receive hands a wire.Result to its waiting caller on the goroutine that
// routes it (ergo patch 0003: the link's decoder), so an answer reaches
// the HTTP goroutine in one step, without the mailbox or gen.Server's
// per-message goroutine. Pending.Deliver never blocks, refuses IDs it did
// not hand out, and takes an answer only from the node the call was sent
// to (from, the sending process's node). Every Result is taken here: none
// reaches the mailbox.
func (r *Router) Receive(from etf.Pid, msg etf.Term) bool {
	if m, ok := msg.(wire.Result); ok {
		deliver(r.Pending, r.Refusals, string(from.Node), m)
		return true
	}
	return false
}

// deliver hands m, sent by node from, to its caller, counting a refusal.
func deliver(p *Pending, refusals *trust.Refusals, from string, m wire.Result) {
	if p.Deliver(from, m) == WrongSender {
		refusals.Refuse("result", trust.WrongSender, from)
	}
}

// HandleInfo refuses a wire.Result that reached the mailbox: there its
// sender is not known, so it cannot be checked against the call (Receive
// takes every Result routed to a live router, so none is expected here).
func (r *Router) HandleInfo(p *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	switch m := msg.(type) {
	case wire.Result:
		r.Refusals.Refuse("result", trust.Unverified, "")
	case gen.MessageFallback:
		if _, ok := m.Message.(wire.Result); ok {
			r.Refusals.Refuse("result", trust.Unverified, "")
		}
	default:
		r.Log.Warn("invoker: unexpected message", "type", fmt.Sprintf("%T", msg))
	}
	return gen.ServerStatusOK
}

// OverflowName is the registered name of the process that routes answers
// which overflowed an invoker process's mailbox (ergo's fallback).
const OverflowName = "invoker_overflow"

// Overflow takes what overflowed an invoker process's mailbox (ergo's
// fallback). Answers never go there (Receive takes them all); one that did
// would come without its sender, and is refused and counted.
type Overflow struct {
	gen.Server
	Log      *slog.Logger
	Refusals *trust.Refusals
}

// HandleInfo handles gen.MessageFallback.
func (o *Overflow) HandleInfo(_ *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	if fb, ok := msg.(gen.MessageFallback); ok {
		if _, ok := fb.Message.(wire.Result); ok {
			o.Refusals.Refuse("result", trust.Unverified, "")
			return gen.ServerStatusOK
		}
		o.Log.Warn("invoker overflow: message dropped", "type", fmt.Sprintf("%T", fb.Message))
	}
	return gen.ServerStatusOK
}
