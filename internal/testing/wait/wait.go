// Package wait polls a condition until it holds or a limit passes: the one
// way tests wait for state they can observe but not be told of. A caller
// never sleeps a fixed time to let something happen; it names the state
// it waits for.
package wait

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// Poll intervals: the first checks come quickly (most conditions hold
// within milliseconds), later ones back off so that a slow condition
// behind an HTTP call does not load the machine.
const (
	firstInterval = time.Millisecond
	maxInterval   = 50 * time.Millisecond
)

// Until calls cond until it returns true and returns nil, or returns an
// error naming what after limit has passed (or ctx's error once ctx is
// done). cond is always called at least once, and once more at the limit.
func Until(ctx context.Context, limit time.Duration, what string, cond func() bool) error {
	deadline := time.Now().Add(limit)
	interval := firstInterval
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		if cond() {
			return nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%s: not within %s", what, limit)
		}
		timer.Reset(min(interval, left))
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-timer.C:
		}
		interval = min(2*interval, maxInterval)
	}
}

// For waits until cond holds, failing the test with what after limit.
func For(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	if err := Until(context.Background(), limit, what, cond); err != nil {
		t.Fatal(err)
	}
}

// ForState is For with a condition that also describes the state it saw,
// which the failure shows (the last one).
func ForState(t testing.TB, limit time.Duration, what string, cond func() (ok bool, state string)) {
	t.Helper()
	var last string
	if err := Until(context.Background(), limit, what, func() bool {
		ok, state := cond()
		last = state
		return ok
	}); err != nil {
		t.Fatalf("%v; last: %s", err, last)
	}
}
