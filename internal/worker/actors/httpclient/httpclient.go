// Package httpclient is the worker's HTTP-client actor: functions' outbound
// requests are messages to its process, carried out under the egress
// policy and answered to the invocation that waits for them.
//
// A host function that makes a request yields to this actor (Client.Do
// sends the request and blocks only that invocation's goroutine); the
// actor performs each request on its own goroutine so a slow host never
// holds up another function. When its mailbox is full, ergo hands the
// request to the Overflow process, which answers ErrBusy at once: a
// request is never dropped silently.
package httpclient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/edgefaas/edgefaas/internal/outbound"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// Name and OverflowName are the registered names of the actor and of its
// overflow answerer on a worker node.
const (
	Name         = "httpclient"
	OverflowName = "httpclient_overflow"
)

// ErrBusy is the answer when the actor's mailbox is full.
var ErrBusy = errors.New("outbound HTTP busy: too many requests in flight on this worker")

// ErrStopped is the answer while the actor is not running (restarting, or
// the worker stopping).
var ErrStopped = errors.New("outbound HTTP is restarting on this worker; try again")

// request is a local message: it never crosses the network, so it may
// carry a context and a channel.
type request struct {
	ctx   context.Context
	req   *outbound.Request
	reply chan *outbound.Response // buffered: a caller that gave up never blocks the actor
}

// Actor performs outbound requests with Policy (an *egress.Client).
type Actor struct {
	gen.Server
	Policy wasm.Outbound
	Log    *slog.Logger
}

// HandleInfo starts each request on its own goroutine.
func (a *Actor) HandleInfo(_ *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	m, ok := msg.(request)
	if !ok {
		a.Log.Warn("httpclient: unexpected message", "type", fmt.Sprintf("%T", msg))
		return gen.ServerStatusOK
	}
	go func() { m.reply <- a.do(m) }()
	return gen.ServerStatusOK
}

func (a *Actor) do(m request) (resp *outbound.Response) {
	defer func() {
		if r := recover(); r != nil {
			a.Log.Error("httpclient: panic", "function", m.req.Function, "panic", r)
			resp = &outbound.Response{Err: errors.New("outbound HTTP failed internally")}
		}
	}()
	if err := m.ctx.Err(); err != nil {
		return &outbound.Response{Err: err}
	}
	return a.Policy.Do(m.ctx, m.req)
}

// Overflow answers ErrBusy for requests that overflowed the actor's mailbox.
type Overflow struct {
	gen.Server
}

// HandleInfo handles gen.MessageFallback.
func (*Overflow) HandleInfo(_ *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	if fb, ok := msg.(gen.MessageFallback); ok {
		if m, ok := fb.Message.(request); ok {
			m.reply <- &outbound.Response{Err: ErrBusy}
		}
	}
	return gen.ServerStatusOK
}

// Client is what the wasm engine calls: it implements wasm.Outbound by
// messaging the actor.
type Client struct {
	// Process returns a live local process by name (the node's
	// ProcessByName), nil while it is restarting.
	Process func(name string) gen.Process
}

// Do sends the request to the actor and waits for its answer or ctx.
func (c *Client) Do(ctx context.Context, req *outbound.Request) *outbound.Response {
	p := c.Process(Name)
	if p == nil {
		return &outbound.Response{Err: ErrStopped}
	}
	m := request{ctx: ctx, req: req, reply: make(chan *outbound.Response, 1)}
	if err := p.Send(p.Self(), m); err != nil {
		return &outbound.Response{Err: fmt.Errorf("%w: %v", ErrStopped, err)}
	}
	select {
	case r := <-m.reply:
		return r
	case <-ctx.Done():
		return &outbound.Response{Err: ctx.Err()}
	}
}
