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
	order := make(chan string, 2)
	errs := make(chan error, 1)
	go func() {
		_, err := invoke(t, e, short, `{"ms":60000}`)
		errs <- err
		order <- "timed out"
	}()
	go func() {
		if res, err := invoke(t, e, long, `{"ms":2000}`); err != nil || string(res.Output) != "2000" {
			t.Errorf("the 2 s timer: %v, %v", res, err)
		}
		order <- "slept 2 s"
	}()
	if first := <-order; first != "timed out" {
		t.Fatalf("the 2 s timer was due before the 60 s timer's 300 ms timeout stopped its call")
	}
	if err := <-errs; !errors.Is(err, wasm.ErrTimeout) {
		t.Errorf("the 60 s timer with a 300 ms timeout: %v, want ErrTimeout", err)
	}
	<-order
}
