package wasm

import (
	"context"
	"fmt"
	"sync"
)

// admission bounds concurrent invocations: up to `slots` run, up to
// maxQueue wait (for a slot or, holding one, for memory), and the rest
// are refused at once with ErrBusy, so that no request is ever silently
// dropped or queued without bound.
//
// It is fair between owners (the tenants whose functions run): one owner
// runs at most perOwner calls at once and holds at most half of the
// queue's places and bytes, and a freed slot goes to the waiting owner
// with the fewest calls running (the oldest waiter among equals). One
// tenant's burst of slow calls leaves the other slots to the others.
// The inputs of waiting calls are held in memory, so the queue is bounded
// by their bytes too (maxQueueBytes); a call larger than that bound
// waits only alone.
type admission struct {
	slots, perOwner, maxQueue int
	maxQueueBytes             int64

	mu        sync.Mutex
	inUse     int   // slots taken
	waiting   int   // calls waiting for a slot or for memory
	waitBytes int64 // their inputs
	seq       uint64
	owners    map[string]*ownerAdmission
}

// ownerAdmission is one owner's share.
type ownerAdmission struct {
	running, waiting int
	waitBytes        int64
	fifo             []*slotWaiter // waiting for a slot, oldest first
}

type slotWaiter struct {
	seq     uint64
	bytes   int64
	ready   chan struct{} // closed when granted
	granted bool
}

func newAdmission(concurrent, perOwner, queue int, queueBytes int64) *admission {
	return &admission{slots: concurrent, perOwner: perOwner, maxQueue: queue, maxQueueBytes: queueBytes,
		owners: map[string]*ownerAdmission{}}
}

func (a *admission) owner(name string) *ownerAdmission {
	o := a.owners[name]
	if o == nil {
		o = &ownerAdmission{}
		a.owners[name] = o
	}
	return o
}

// forget drops an owner with nothing running or waiting.
func (a *admission) forget(name string, o *ownerAdmission) {
	if o.running == 0 && o.waiting == 0 && len(o.fifo) == 0 {
		delete(a.owners, name)
	}
}

// enqueueLocked takes a queue place for n input bytes of owner o, or
// says why there is none.
func (a *admission) enqueueLocked(o *ownerAdmission, n int64) error {
	switch {
	case a.waiting+1 > a.maxQueue:
		return ErrBusy
	case a.waiting > 0 && a.waitBytes+n > a.maxQueueBytes:
		return fmt.Errorf("%w: the waiting calls' inputs would pass %d bytes", ErrBusy, a.maxQueueBytes)
	case o.waiting+1 > max(a.maxQueue/2, 1):
		return fmt.Errorf("%w: this owner's calls hold half the queue's %d places", ErrBusy, a.maxQueue)
	case o.waiting > 0 && o.waitBytes+n > a.maxQueueBytes/2:
		return fmt.Errorf("%w: this owner's waiting calls' inputs would pass half the queue's %d bytes", ErrBusy, a.maxQueueBytes)
	}
	a.waiting++
	a.waitBytes += n
	o.waiting++
	o.waitBytes += n
	return nil
}

func (a *admission) dequeueLocked(o *ownerAdmission, n int64) {
	a.waiting--
	a.waitBytes -= n
	o.waiting--
	o.waitBytes -= n
}

// acquire takes a slot for a call of owner with an input of n bytes,
// waiting (within ctx) if the queue has room.
func (a *admission) acquire(ctx context.Context, owner string, n int64) error {
	a.mu.Lock()
	o := a.owner(owner)
	if a.inUse < a.slots && o.running < a.perOwner && len(o.fifo) == 0 {
		a.inUse++
		o.running++
		a.mu.Unlock()
		return nil
	}
	if err := a.enqueueLocked(o, n); err != nil {
		a.forget(owner, o)
		a.mu.Unlock()
		return err
	}
	a.seq++
	w := &slotWaiter{seq: a.seq, bytes: n, ready: make(chan struct{})}
	o.fifo = append(o.fifo, w)
	a.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if w.granted { // granted meanwhile: give it back
		a.releaseLocked(owner, o)
		return ctx.Err()
	}
	for i, x := range o.fifo {
		if x == w {
			o.fifo = append(o.fifo[:i], o.fifo[i+1:]...)
			break
		}
	}
	a.dequeueLocked(o, n)
	a.forget(owner, o)
	return ctx.Err()
}

func (a *admission) release(owner string) {
	a.mu.Lock()
	a.releaseLocked(owner, a.owner(owner))
	a.mu.Unlock()
}

func (a *admission) releaseLocked(owner string, o *ownerAdmission) {
	a.inUse--
	o.running--
	a.forget(owner, o)
	a.grantLocked()
}

// grantLocked gives free slots to waiters: each to the owner below its
// share with the fewest calls running, its oldest waiter first.
func (a *admission) grantLocked() {
	for a.inUse < a.slots {
		var best *ownerAdmission
		for _, o := range a.owners {
			if len(o.fifo) == 0 || o.running >= a.perOwner {
				continue
			}
			if best == nil || o.running < best.running || o.running == best.running && o.fifo[0].seq < best.fifo[0].seq {
				best = o
			}
		}
		if best == nil {
			return
		}
		w := best.fifo[0]
		best.fifo = best.fifo[1:]
		a.dequeueLocked(best, w.bytes)
		a.inUse++
		best.running++
		w.granted = true
		close(w.ready)
	}
}

// queue takes a place in the wait queue for a call of owner (holding a
// slot) that waits for memory rather than a slot: the queue's bounds
// cover both.
func (a *admission) queue(owner string, n int64) func() (bool, func()) {
	return func() (bool, func()) {
		a.mu.Lock()
		defer a.mu.Unlock()
		o := a.owner(owner)
		if a.enqueueLocked(o, n) != nil {
			return false, nil
		}
		return true, func() {
			a.mu.Lock()
			a.dequeueLocked(o, n)
			a.forget(owner, o)
			a.mu.Unlock()
		}
	}
}

// running and queued are for metrics and reports.
func (a *admission) running() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.inUse
}

func (a *admission) queued() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.waiting
}
