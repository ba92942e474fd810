package wasm

import (
	"context"
	"sync/atomic"
)

// admission bounds concurrent invocations: up to cap(slots) run, up to
// maxQueue wait for a slot, and the rest are refused at once with ErrBusy,
// so that no request is ever silently dropped or queued without bound.
type admission struct {
	slots    chan struct{}
	waiting  atomic.Int64
	maxQueue int64
}

func newAdmission(concurrent, queue int) *admission {
	return &admission{slots: make(chan struct{}, concurrent), maxQueue: int64(queue)}
}

func (a *admission) acquire(ctx context.Context) error {
	select {
	case a.slots <- struct{}{}:
		return nil
	default:
	}
	if a.waiting.Add(1) > a.maxQueue {
		a.waiting.Add(-1)
		return ErrBusy
	}
	defer a.waiting.Add(-1)
	select {
	case a.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *admission) release() { <-a.slots }

// queue takes a place in the wait queue for a call that waits for memory
// rather than a slot: the queue bound covers both.
func (a *admission) queue() (bool, func()) {
	if a.waiting.Add(1) > a.maxQueue {
		a.waiting.Add(-1)
		return false, nil
	}
	return true, func() { a.waiting.Add(-1) }
}

// running and queued are for metrics and reports.
func (a *admission) running() int { return len(a.slots) }
func (a *admission) queued() int  { return int(a.waiting.Load()) }
