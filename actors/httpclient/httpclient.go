// Package httpclient is the worker's HTTP-client actor: functions' outbound
// requests are messages in its mailbox, carried out by its workers under
// the egress policy, and answered to the invocation that waits for them.
//
// A host function that makes a request yields to this actor and blocks only
// its own goroutine; the actor bounds how many requests are in flight on the
// worker, and answers at once with ErrBusy when its mailbox is full, so a
// request is never dropped silently.
package httpclient

import (
	"context"
	"errors"
	"sync"

	"github.com/edgefaas/edgefaas/wasm"
)

// ErrBusy is the answer when the mailbox is full.
var ErrBusy = errors.New("outbound HTTP busy: too many requests in flight on this worker")

// ErrStopped is the answer after Stop.
var ErrStopped = errors.New("outbound HTTP stopped")

type envelope struct {
	ctx   context.Context
	req   *wasm.OutboundRequest
	reply chan *wasm.OutboundResponse
}

// Actor is the HTTP-client actor. It implements wasm.Outbound.
type Actor struct {
	policy  wasm.Outbound
	mailbox chan envelope
	stop    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

// Start starts the actor with workers concurrent requests and a mailbox of
// the given size, performing requests with policy (an *egress.Client).
func Start(policy wasm.Outbound, workers, mailbox int) *Actor {
	if workers <= 0 {
		workers = 32
	}
	if mailbox <= 0 {
		mailbox = 1024
	}
	a := &Actor{policy: policy, mailbox: make(chan envelope, mailbox), stop: make(chan struct{})}
	for range workers {
		a.wg.Add(1)
		go a.loop()
	}
	return a
}

func (a *Actor) loop() {
	defer a.wg.Done()
	for {
		select {
		case <-a.stop:
			return
		case m := <-a.mailbox:
			// The reply channel is buffered: a caller that gave up never blocks us.
			m.reply <- a.handle(m)
		}
	}
}

func (a *Actor) handle(m envelope) (resp *wasm.OutboundResponse) {
	defer func() {
		if r := recover(); r != nil {
			resp = &wasm.OutboundResponse{Err: errors.New("outbound HTTP failed internally")}
		}
	}()
	if err := m.ctx.Err(); err != nil {
		return &wasm.OutboundResponse{Err: err}
	}
	return a.policy.Do(m.ctx, m.req)
}

// Do sends the request to the actor and waits for its answer or ctx.
func (a *Actor) Do(ctx context.Context, req *wasm.OutboundRequest) *wasm.OutboundResponse {
	m := envelope{ctx: ctx, req: req, reply: make(chan *wasm.OutboundResponse, 1)}
	select {
	case <-a.stop:
		return &wasm.OutboundResponse{Err: ErrStopped}
	default:
	}
	select {
	case a.mailbox <- m:
	default:
		return &wasm.OutboundResponse{Err: ErrBusy}
	}
	select {
	case r := <-m.reply:
		return r
	case <-ctx.Done():
		return &wasm.OutboundResponse{Err: ctx.Err()}
	case <-a.stop:
		return &wasm.OutboundResponse{Err: ErrStopped}
	}
}

// Queued is the number of requests waiting in the mailbox, for metrics.
func (a *Actor) Queued() int { return len(a.mailbox) }

// Stop ends the actor; requests waiting in the mailbox are answered ErrStopped.
func (a *Actor) Stop() {
	a.once.Do(func() {
		close(a.stop)
		a.wg.Wait()
	})
}
