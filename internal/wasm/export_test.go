package wasm

import "fmt"

// SetTerminationCheck makes the runtimes created afterwards check for
// termination with "countdown" (the default), "stock" (wazero's check at
// every loop back-edge) or "none", so that benchmarks can price each; it
// returns a function restoring the default. Not for concurrent use.
func SetTerminationCheck(check string) (restore func()) {
	switch check {
	case "countdown":
		termination = checkCountdown
	case "stock":
		termination = checkStock
	case "none":
		termination = checkNone
	default:
		panic(fmt.Sprintf("unknown termination check %q", check))
	}
	return func() { termination = checkCountdown }
}

// GuestSlots is how many guests run guest code at once (slots.go).
func GuestSlots() int { return guestSlotCount() }

// GCFloor is the heap an engine's process keeps reserved (slots.go).
const GCFloor = gcFloor

var GCFloorFor = gcFloorFor

// LongGuests is how many guests hold or wait for a long slot (slots.go):
// those past longAfter, which only a guest running its code becomes.
func (e *Engine) LongGuests() int {
	if e.slots == nil {
		return 0
	}
	return len(e.slots.long) + int(e.slots.longWaiting.Load())
}

// SlotsHeld is how many CPU slots guests hold now (slots.go).
func (e *Engine) SlotsHeld() int {
	if e.slots == nil {
		return 0
	}
	return len(e.slots.sem)
}

// Retiring reports whether m has been evicted (Evict marks it at once,
// before its close waits for the calls in flight).
func (m *Module) Retiring() bool {
	m.life.mu.Lock()
	defer m.life.mu.Unlock()
	return m.life.retiring
}
