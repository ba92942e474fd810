package wasm_test

import (
	"errors"
	"math"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/wasm"
)

// TestGuestsShareSlots fills every CPU slot with guests, then calls a C
// hello: it must be served while they still run, by a spinner handing its
// slot over at a termination check, or by a sleeper giving it up in WASI's
// poll_oneoff. Were the slots held, the hello would wait for the end of a
// guest.
func TestGuestsShareSlots(t *testing.T) {
	e := newEngine(t, wasm.Config{})
	hello := compile(t, e, "hello-c", wasm.Limits{})
	const runFor = 1500 * time.Millisecond
	for _, tc := range []struct{ name, module, input string }{
		{"spinners", "test/spin", `{}`},
		{"sleepers", "sleep", `{"ms":1500}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := compile(t, e, tc.module, wasm.Limits{Timeout: runFor})
			n := wasm.GuestSlots()
			var wg sync.WaitGroup
			start := time.Now()
			var mu sync.Mutex
			var firstEnd time.Duration = 1 << 62
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := invoke(t, e, m, tc.input)
					if err != nil && !errors.Is(err, wasm.ErrTimeout) {
						t.Errorf("%s: %v", tc.module, err)
					}
					mu.Lock()
					firstEnd = min(firstEnd, time.Since(start))
					mu.Unlock()
				}()
			}
			for e.Stats().Running < n {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond) // into their loop or sleep
			var slowest time.Duration
			for range 20 {
				t0 := time.Now()
				if _, err := invoke(t, e, hello, `{"name":"edge"}`); err != nil {
					t.Fatal(err)
				}
				slowest = max(slowest, time.Since(t0))
			}
			helloDone := time.Since(start)
			wg.Wait()
			t.Logf("%d %s: the first ended after %s; 20 hellos done after %s, slowest %s", n, tc.name, firstEnd, helloDone, slowest)
			if helloDone >= firstEnd {
				t.Fatalf("the hellos ended after the first of the %s (%s >= %s): they waited for its slot", tc.name, helloDone, firstEnd)
			}
			if slowest > firstEnd/10 {
				t.Fatalf("slowest hello %s is more than a tenth of the %s' run %s", slowest, tc.name, firstEnd)
			}
		})
	}
}

// TestGCFloor checks that a process running compiled guests keeps its heap
// goal above the floor even when its live heap is small, so that the
// collector, whose stop-the-world waits for computing guests to reach a
// termination check, runs rarely (slots.go, gcFloor).
func TestGCFloor(t *testing.T) {
	newEngine(t, wasm.Config{})
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	goal, live := s[0].Value.Uint64(), s[1].Value.Uint64()
	t.Logf("heap goal %d MiB, live %d MiB", goal>>20, live>>20)
	if live < wasm.GCFloor || goal < live {
		t.Fatalf("after a GC the live heap is %d bytes and its goal %d, want both at least the floor of %d", live, goal, wasm.GCFloor)
	}
}

// TestGCFloorUnderSmallLimits: the floor is at most an eighth of the soft
// memory limit, so a small node's limit keeps room for its own collections.
func TestGCFloorUnderSmallLimits(t *testing.T) {
	for _, c := range []struct{ limit, want int64 }{
		{math.MaxInt64, wasm.GCFloor}, // no limit
		{1 << 30, wasm.GCFloor},
		{72 << 20, 9 << 20}, // a 128 MiB cgroup
		{8 << 20, 1 << 20},
	} {
		if got := int64(wasm.GCFloorFor(c.limit)); got != c.want {
			t.Errorf("limit %d: floor %d, want %d", c.limit, got, c.want)
		}
	}
}
