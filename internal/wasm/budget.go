package wasm

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// budget accounts bytes an engine commits (guest linear memory, compiled
// code) against a limit, so that a node is never OOM-killed by its own
// guests: a reservation that does not fit waits until others are
// released, or is refused. A limit of 0 accounts without bounding (the
// engine's behaviour when Config.MemoryBudget is not set).
//
// Waiters are served fairly between owners (tenants): the next one served
// is the first waiter of the owner holding the least, and a reservation
// passes the waiters of owners that hold more than its own owner. So one
// tenant's many large calls queued for memory hold up their own calls,
// not a neighbour's small one. Reservations with no owner (compiled code)
// are served in order.
type budget struct {
	mu     sync.Mutex
	limit  int64
	used   int64
	high   int64 // the most ever reserved at once: tests assert it never exceeds limit
	queue  []*budgetWaiter
	owners map[string]int64 // what each owner holds ("" not kept)
	total  *total           // shared with the engine's other budget, may be nil
}

// total is the sum of an engine's budgets and its high-water mark.
type total struct{ used, high atomic.Int64 }

func (t *total) add(n int64) {
	if t == nil {
		return
	}
	v := t.used.Add(n)
	for {
		h := t.high.Load()
		if v <= h || t.high.CompareAndSwap(h, v) {
			return
		}
	}
}

type budgetWaiter struct {
	owner string
	n     int64
	ready chan struct{}
	done  bool // granted (under mu)
}

// take reserves n for owner if it fits; the caller holds b.mu.
func (b *budget) take(owner string, n int64) bool {
	if b.limit > 0 && b.used+n > b.limit {
		return false
	}
	b.used += n
	b.high = max(b.high, b.used)
	b.total.add(n)
	if owner != "" {
		if b.owners == nil {
			b.owners = map[string]int64{}
		}
		b.owners[owner] += n
	}
	return true
}

// next is the index of the waiter to serve next: the first waiter of the
// owner holding the least (-1 if none); the caller holds b.mu.
func (b *budget) next() int {
	best := -1
	for i, w := range b.queue {
		if best < 0 || b.owners[w.owner] < b.owners[b.queue[best].owner] {
			best = i
		}
	}
	return best
}

// mayPass reports whether a new reservation of owner may be taken before
// the queued ones: every waiter's owner holds more than owner does. The
// caller holds b.mu.
func (b *budget) mayPass(owner string) bool {
	held := b.owners[owner]
	for _, w := range b.queue {
		if b.owners[w.owner] <= held {
			return false
		}
	}
	return true
}

// fit caps a request at the limit: a reservation larger than the whole
// budget could never be granted, so it gets all of it (and runs alone).
func (b *budget) fit(n int64) int64 {
	if b.limit > 0 && n > b.limit {
		return b.limit
	}
	return n
}

// tryReserve reserves n now or reports false. It may pass the queue: it is
// for a guest that is already running and grows (its progress is what
// frees memory for the waiters).
func (b *budget) tryReserve(owner string, n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.take(owner, n)
}

// reserve reserves n bytes for owner, waiting behind earlier requests if
// they do not fit (and their owners hold no more than owner: see budget). reclaim, if not nil, is asked once to free idle holdings
// (pooled instances, unused code) before waiting; wait reports whether
// the caller may queue (false: ErrBusy). n must be at most the limit (see fit).
func (b *budget) reserve(ctx context.Context, owner string, n int64, reclaim func(need int64), wait func() (ok bool, done func()), alt *alternative) error {
	b.mu.Lock()
	if b.mayPass(owner) && b.take(owner, n) {
		b.mu.Unlock()
		return nil
	}
	b.mu.Unlock()
	if reclaim != nil {
		reclaim(n)
	}
	b.mu.Lock()
	if b.mayPass(owner) && b.take(owner, n) {
		b.mu.Unlock()
		return nil
	}
	ok, leave := true, func() {}
	if wait != nil {
		ok, leave = wait()
	}
	if !ok {
		b.mu.Unlock()
		return ErrBusy
	}
	defer leave()
	w := &budgetWaiter{owner: owner, n: n, ready: make(chan struct{})}
	b.queue = append(b.queue, w)
	b.mu.Unlock()
	// While waiting, idle holdings that appeared since (an instance pooled
	// just before this call queued) are reclaimed too.
	tick := time.NewTicker(reclaimEvery)
	defer tick.Stop()
	for {
		var wake <-chan struct{}
		if alt != nil {
			wake = alt.wake()
			if alt.take() {
				b.leave(w)
				return errAlternative
			}
		}
		select {
		case <-w.ready:
			return nil
		case <-wake:
		case <-tick.C:
			if reclaim != nil {
				reclaim(b.headNeed())
			}
		case <-ctx.Done():
			b.leave(w)
			return ctx.Err()
		}
	}
}

// alternative lets a waiting reservation be served otherwise: a call
// waiting for memory for a new instance takes a warm one as soon as one is
// returned to its pool (wake fires on every return while calls wait).
type alternative struct {
	wake func() <-chan struct{}
	take func() bool
}

// errAlternative means the reservation was not needed: alternative.take
// succeeded.
var errAlternative = errors.New("served by an alternative")

// signal is a broadcast that can fire many times: wait returns a channel
// closed at the next fire.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) fire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// leave takes a waiter that gave up out of the queue (or gives back what
// it was granted meanwhile).
func (b *budget) leave(w *budgetWaiter) {
	b.mu.Lock()
	if w.done {
		b.mu.Unlock()
		b.release(w.owner, w.n)
		return
	}
	for i, q := range b.queue {
		if q == w {
			b.queue = append(b.queue[:i], b.queue[i+1:]...)
			break
		}
	}
	b.grant() // the next one may fit now
	b.mu.Unlock()
}

// reclaimEvery is how often a waiting reservation retries reclaiming idle
// holdings.
const reclaimEvery = 100 * time.Millisecond

// headNeed is what the next waiter to serve asks for (0 if none).
func (b *budget) headNeed() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if i := b.next(); i >= 0 {
		return b.queue[i].n
	}
	return 0
}

// release returns n bytes owner held and admits the waiters that now fit.
func (b *budget) release(owner string, n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.total.add(-n)
	if owner != "" {
		if b.owners[owner] -= n; b.owners[owner] <= 0 {
			delete(b.owners, owner)
		}
	}
	b.grant()
	b.mu.Unlock()
}

// grant admits waiters, the next to serve first (see next), while they
// fit; the caller holds b.mu.
func (b *budget) grant() {
	for {
		i := b.next()
		if i < 0 || !b.take(b.queue[i].owner, b.queue[i].n) {
			return
		}
		w := b.queue[i]
		b.queue = append(b.queue[:i], b.queue[i+1:]...)
		w.done = true
		close(w.ready)
	}
}

// waiting reports whether reservations are queued: an instance that ends
// its call then gives its memory back rather than idling in a pool.
func (b *budget) waiting() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue) > 0
}

func (b *budget) snapshot() (limit, used, high int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.limit, b.used, b.high
}

// account is what one instance holds of the instance budget. Its linear
// memory grows only within it: growing past it reserves more at once or
// fails, so a guest can never commit memory the budget did not grant.
type account struct {
	b        *budget
	owner    string // the tenant whose call made the instance
	mu       sync.Mutex
	reserved int64
	denied   bool  // a grow failed because the budget was spent
	never    bool  // ... and the grow could not fit even in an idle engine
	wanted   int64 // the largest size a refused grow asked for
	reclaim  func(need int64)
}

// grow makes the account hold at least size bytes.
func (a *account) grow(size int64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if size <= a.reserved {
		return true
	}
	need := roundUp(size-a.reserved, growStep)
	if a.b.limit > 0 && a.reserved+need > a.b.limit {
		need = size - a.reserved
	}
	if !a.b.tryReserve(a.owner, need) {
		if a.reclaim != nil {
			a.reclaim(need)
		}
		if !a.b.tryReserve(a.owner, need) {
			a.denied = true
			a.never = a.b.limit > 0 && a.reserved+need > a.b.limit
			a.wanted = max(a.wanted, size)
			return false
		}
	}
	a.reserved += need
	return true
}

// topUp makes a warm instance's account hold at least size (its module's
// current bound) before a call, so that the call's growth within the bound
// cannot be refused halfway. It never waits: an instance waiting for memory
// while holding some could deadlock with others doing the same, so a
// top-up that does not fit (even after idle instances are reclaimed)
// reports false and the caller closes the instance and queues for a new
// one, holding nothing.
func (a *account) topUp(size int64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.b.limit > 0 {
		size = min(size, a.b.limit)
	}
	if size <= a.reserved {
		return true
	}
	need := size - a.reserved
	if !a.b.tryReserve(a.owner, need) {
		if a.reclaim != nil {
			a.reclaim(need)
		}
		if !a.b.tryReserve(a.owner, need) {
			return false
		}
	}
	a.reserved += need
	return true
}

// trim gives back what the account holds beyond size (rounded up to
// growStep): an instance that goes idle keeps only what it committed, not
// the bound it was admitted with.
func (a *account) trim(size int64) {
	a.mu.Lock()
	keep := roundUp(size, growStep)
	extra := a.reserved - keep
	if extra <= 0 {
		a.mu.Unlock()
		return
	}
	a.reserved = keep
	a.mu.Unlock()
	a.b.release(a.owner, extra)
}

// close gives the whole reservation back; the instance is gone.
func (a *account) close() {
	a.mu.Lock()
	n := a.reserved
	a.reserved = 0
	a.mu.Unlock()
	a.b.release(a.owner, n)
}

func (a *account) outcome() (denied, never bool, wanted int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.denied, a.never, a.wanted
}

// growStep is the granularity of reservations beyond the first: 1 MiB.
const growStep = 1 << 20

func roundUp(n, step int64) int64 { return (n + step - 1) / step * step }
