package wasm_test

import (
	"errors"
	"testing"
	"time"

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
	order := make(chan string, 2)
	errs := make(chan error, 1)
	go func() {
		_, err := invoke(t, e, short, `{"ms":60000}`)
		errs <- err
		order <- "timed out"
	}()
	go func() {
		if _, err := invoke(t, e, long, `{"ms":3000}`); err != nil {
			t.Errorf("the 3 s sleep: %v", err)
		}
		order <- "slept 3 s"
	}()
	if first := <-order; first != "timed out" {
		t.Fatalf("the 3 s sleep ended before the 60 s sleep's 300 ms timeout stopped it")
	}
	if err := <-errs; !errors.Is(err, wasm.ErrTimeout) {
		t.Errorf("the 60 s sleep with a 300 ms timeout: %v, want ErrTimeout", err)
	}
	<-order
}
