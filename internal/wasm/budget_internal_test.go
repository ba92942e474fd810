package wasm

import (
	"context"
	"testing"
)

// TestBudgetNeighbourPassesAFlooder: while one tenant holds most of the
// instance memory and its next large reservation waits, a neighbour's
// small one that fits is taken at once, not queued behind the flooder's.
// The neighbour's context is already cancelled: a reservation that would
// wait fails at once, one taken without waiting succeeds.
func TestBudgetNeighbourPassesAFlooder(t *testing.T) {
	b := &budget{limit: 10}
	if !b.tryReserve("flooder", 8) {
		t.Fatal("the flooder's first 8 did not fit in 10")
	}
	queued := make(chan error, 1)
	go func() { queued <- b.reserve(context.Background(), "flooder", 5, nil, nil, nil) }()
	for !b.waiting() {
		select {
		case err := <-queued:
			t.Fatalf("the flooder's 5 did not wait: %v", err)
		default:
		}
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.reserve(done, "neighbour", 2, nil, nil, nil); err != nil {
		t.Fatalf("the neighbour's 2 (room for it: 8 of 10 used) waited behind the flooder's 5: %v", err)
	}
	// Another reservation of the flooder's still waits its turn.
	if err := b.reserve(done, "flooder", 1, nil, nil, nil); err == nil {
		t.Error("the flooder's 1 passed its own waiting 5")
	}
	b.release("neighbour", 2)
	b.release("flooder", 8)
	if err := <-queued; err != nil {
		t.Fatalf("the flooder's 5 after the releases: %v", err)
	}
}

// TestBudgetServesTheLighterOwnerFirst: when memory is released, the
// waiter of the owner holding the least is served first, whatever the
// order they queued in.
func TestBudgetServesTheLighterOwnerFirst(t *testing.T) {
	b := &budget{limit: 10}
	b.tryReserve("heavy", 6)
	b.tryReserve("light", 4)
	heavy := &budgetWaiter{owner: "heavy", n: 2, ready: make(chan struct{})}
	light := &budgetWaiter{owner: "light", n: 2, ready: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, heavy, light) // heavy queued first
	b.mu.Unlock()
	b.release("light", 2) // room for one of them
	if !light.done || heavy.done {
		t.Fatalf("served: light %v, heavy %v; want the light owner's waiter (it holds 2, heavy 6)", light.done, heavy.done)
	}
	b.release("heavy", 2)
	if !heavy.done {
		t.Error("the heavy owner's waiter was not served once room came")
	}
}

// TestBudgetWithoutOwnersIsInOrder: reservations with no owner (compiled
// code) keep first come, first served: a later small one does not pass a
// waiting large one.
func TestBudgetWithoutOwnersIsInOrder(t *testing.T) {
	b := &budget{limit: 10}
	b.tryReserve("", 8)
	first := &budgetWaiter{n: 5, ready: make(chan struct{})}
	b.mu.Lock()
	b.queue = append(b.queue, first)
	b.mu.Unlock()
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.reserve(done, "", 1, nil, nil, nil); err == nil {
		t.Error("a later reservation with no owner passed the waiting one")
	}
}
