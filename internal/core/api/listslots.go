package api

import (
	"context"
	"sync"
	"sync/atomic"
)

// listSlots lets each subject scan activation records one list at a time.
// A list examines up to maxListScan records, decoding each: a tenant's
// three lists at once over a store full of a neighbour's records took
// both cores of a small box, and the neighbour's calls slowed 26-fold
// (make bench, attacks). One at a time, a subject's lists take one core
// at most, however many it sends; its other lists wait their turn (the
// connection bound bounds the waiters). A long poll holds the slot only
// while it scans, not while it waits.
type listSlots struct {
	mu    sync.Mutex
	slots map[string]chan struct{} // a subject's slot: full while one of its lists scans
	waits atomic.Int64             // lists that waited for their subject's slot
}

// acquire waits until subject has no list scanning, or ctx ends.
func (l *listSlots) acquire(ctx context.Context, subject string) error {
	l.mu.Lock()
	if l.slots == nil {
		l.slots = map[string]chan struct{}{}
	}
	slot := l.slots[subject]
	if slot == nil {
		slot = make(chan struct{}, 1)
		l.slots[subject] = slot
	}
	l.mu.Unlock()
	select {
	case slot <- struct{}{}:
		return nil
	default:
	}
	l.waits.Add(1)
	select {
	case slot <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release frees subject's slot, taken by acquire.
func (l *listSlots) release(subject string) {
	l.mu.Lock()
	slot := l.slots[subject]
	l.mu.Unlock()
	<-slot
}
