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
