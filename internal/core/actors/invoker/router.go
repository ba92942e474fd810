package invoker

import (
	"fmt"
	"log/slog"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

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
}

// Receive hands a wire.Result to its waiting caller on the goroutine that
// routes it (ergo patch 0003: the link's decoder), so an answer reaches
// the HTTP goroutine in one step, without the mailbox or gen.Server's
// per-message goroutine. Pending.Deliver never blocks and refuses IDs it
// did not hand out.
func (r *Router) Receive(_ etf.Pid, msg etf.Term) bool {
	if m, ok := msg.(wire.Result); ok {
		r.Pending.Deliver(m)
		return true
	}
	return false
}

// HandleInfo routes wire.Result that reached the mailbox (ergo's Receive
// not taken), also when it overflowed another invoker's mailbox.
func (r *Router) HandleInfo(p *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	switch m := msg.(type) {
	case wire.Result:
		r.Pending.Deliver(m)
	case gen.MessageFallback:
		if res, ok := m.Message.(wire.Result); ok {
			r.Pending.Deliver(res)
		}
	default:
		r.Log.Warn("invoker: unexpected message", "type", fmt.Sprintf("%T", msg))
	}
	return gen.ServerStatusOK
}

// OverflowName is the registered name of the process that routes answers
// which overflowed an invoker process's mailbox (ergo's fallback).
const OverflowName = "invoker_overflow"

// Overflow routes a wire.Result that an invoker process's full mailbox
// could not take: it reaches its caller all the same, never dropped.
type Overflow struct {
	gen.Server
	Pending *Pending
	Log     *slog.Logger
}

// HandleInfo handles gen.MessageFallback.
func (o *Overflow) HandleInfo(_ *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	if fb, ok := msg.(gen.MessageFallback); ok {
		if m, ok := fb.Message.(wire.Result); ok {
			o.Pending.Deliver(m)
			return gen.ServerStatusOK
		}
		o.Log.Warn("invoker overflow: message dropped", "type", fmt.Sprintf("%T", fb.Message))
	}
	return gen.ServerStatusOK
}
