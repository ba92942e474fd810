package wasm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/jsengine"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// TestSleepStoppedAtTimeout: a guest asleep in WASI's poll_oneoff (Go's
// time.Sleep) past its timeout ends at the timeout, not when its sleep
// ends: otherwise a short-timeout function that sleeps for an hour keeps
// its instance and its memory reservation for the hour, and a tenant can
// hold a worker's memory with calls whose callers were answered long ago.
// Shown as an ordering: the 60 s sleep with a 300 ms timeout ends before
// a 3 s sleep started beside it.
func TestSleepStoppedAtTimeout(t *testing.T) {
	e := newEngine(t, wasm.Config{})
	short := compile(t, e, "sleep", wasm.Limits{Timeout: 300 * time.Millisecond})
	long := compile(t, e, "sleep", wasm.Limits{})
	stoppedFirst(t, e, short, long, `{"ms":60000}`, `{"ms":3000}`, "")
}

// TestJSSleepStoppedAtTimeout: a JavaScript call awaiting a timer far past
// its timeout is answered as a timeout when the timeout comes: the runner
// sleeps until its next timer in one WASI sleep, which ends with the call.
// Shown as an ordering: a 60 s timer under a 300 ms timeout ends before a
// 2 s timer started beside it.
func TestJSSleepStoppedAtTimeout(t *testing.T) {
	needEngine(t)
	ctx := context.Background()
	e := newEngine(t, wasm.Config{})
	src := jsengine.Wrap([]byte(`export default async (a) => { await new Promise(done => setTimeout(done, a.ms)); return a.ms }`))
	short, err := e.Compile(ctx, src, wasm.Limits{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	long, err := e.Compile(ctx, src, wasm.Limits{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []*wasm.Module{short, long} { // prepare both instances first
		if _, err := invoke(t, e, m, `{"ms":1}`); err != nil {
			t.Fatal(err)
		}
	}
	stoppedFirst(t, e, short, long, `{"ms":60000}`, `{"ms":2000}`, "2000")
}

// stoppedFirst calls short with shortIn, a sleep far past short's
// timeout, and beside it long with longIn, a shorter sleep that still
// outlasts that timeout: short's call must be answered first, as a
// timeout, and long's with longOut (any output if empty).
func stoppedFirst(t *testing.T, e *wasm.Engine, short, long *wasm.Module, shortIn, longIn, longOut string) {
	t.Helper()
	order := make(chan string, 2)
	errs := make(chan error, 1)
	go func() {
		_, err := invoke(t, e, short, shortIn)
		errs <- err
		order <- "timed out"
	}()
	go func() {
		res, err := invoke(t, e, long, longIn)
		if err != nil || longOut != "" && string(res.Output) != longOut {
			t.Errorf("the sleep %s beside it: %v, %v; want %q", longIn, res, err, longOut)
		}
		order <- "slept"
	}()
	if first := <-order; first != "timed out" {
		t.Fatalf("the sleep %s ended before the sleep %s was stopped at its timeout", longIn, shortIn)
	}
	if err := <-errs; !errors.Is(err, wasm.ErrTimeout) {
		t.Errorf("the sleep %s past its timeout: %v, want ErrTimeout", shortIn, err)
	}
	<-order
}
