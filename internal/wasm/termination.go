package wasm

import "github.com/tetratelabs/wazero"

// terminationCheckInterval is how many loop back-edges and function entries
// a guest runs between two checks of its deadline. Each one decrements a
// per-call countdown inline (a load, a subtract, a store and a branch, in
// the patched wazero: patches/README.md); only when it reaches zero does
// the guest leave native code, so that Go sees a closed module (the
// timeout) and its scheduler and GC can preempt the goroutine. At about a
// nanosecond per iteration of a tight loop that is every few microseconds;
// wazero's own check leaves native code at every back-edge (~15 ns each).
// See docs/architecture.md, "Timeouts", for how it was chosen.
const terminationCheckInterval = 1 << 12

// terminationCheck is how guests are made stoppable. Only tests change it,
// to measure the price of each (internal/wasm/check_bench_test.go).
type terminationCheck int

const (
	checkCountdown terminationCheck = iota // the inline countdown (always, outside tests)
	checkStock                             // wazero's check at every loop back-edge
	checkNone                              // none: a spinning guest cannot be stopped
)

var termination = checkCountdown

// guestRuntimeConfig is the wazero configuration every guest runtime starts
// from: the optimizing compiler (or the interpreter) with the timeout check.
// WithCloseOnContextDone is what makes a timeout stop a spinning guest and
// keeps a long guest from freezing the host's GC (docs/RATIONALE.md#why-the-countdown-termination-check);
// WithTerminationCheckInterval, which only the patched wazero has, makes it
// nearly free, and fails the build if the patch is missing.
// The compile child (compilechild.go) starts from it too: its cache entry
// is keyed by it.
func guestRuntimeConfig(interpreter bool) wazero.RuntimeConfig {
	rc := wazero.NewRuntimeConfig()
	if interpreter {
		rc = wazero.NewRuntimeConfigInterpreter()
	}
	switch termination {
	case checkStock:
		return rc.WithCloseOnContextDone(true)
	case checkNone:
		return rc
	}
	return rc.WithCloseOnContextDone(true).WithTerminationCheckInterval(terminationCheckInterval)
}
