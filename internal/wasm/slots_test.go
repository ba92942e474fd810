package wasm_test

import (
	"errors"
	"math"
	"runtime"
	"runtime/metrics"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/wait"
	"github.com/edgefaas/edgefaas/internal/wasm"
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
	n := wasm.GuestSlots()
	for _, tc := range []struct {
		name, module, input string
		// busy says every guest is in its loop or its sleep, given how
		// many calls had started before.
		busy func(started int64) bool
	}{
		// A spinner turns long only at a termination check in its loop.
		{"spinners", "test/spin", `{}`, func(int64) bool { return e.LongGuests() == n }},
		// A sleeper took a slot as its call started, and gives it up in
		// poll_oneoff.
		{"sleepers", "sleep", `{"ms":1500}`, func(started int64) bool {
			return e.Stats().Invocations-started == int64(n) && e.SlotsHeld() == 0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := compile(t, e, tc.module, wasm.Limits{Timeout: runFor})
			started := e.Stats().Invocations
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
			wait.For(t, time.Minute, "every "+tc.name+" guest in its loop or sleep", func() bool { return tc.busy(started) })
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

// TestLongGuestsLeaveACPU runs as many spinning guests as there are CPU
// slots: once long-running they share one CPU fewer (slots.go, longAfter),
// so the process uses about slots-1 CPUs, not slots, while they spin, and
// every one of them still runs until its timeout.
func TestLongGuestsLeaveACPU(t *testing.T) {
	n := wasm.GuestSlots()
	if n < 2 {
		t.Skip("one CPU slot: no CPU to leave free")
	}
	e := newEngine(t, wasm.Config{})
	spin := compile(t, e, "test/spin", wasm.Limits{Timeout: 2 * time.Second})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := invoke(t, e, spin, `{}`); !errors.Is(err, wasm.ErrTimeout) {
				t.Errorf("spin: %v, want a timeout", err)
			}
		}()
	}
	wait.For(t, time.Minute, "every spinner long", func() bool { return e.LongGuests() == n })
	cpu0, wall0 := processCPU(t), time.Now()
	time.Sleep(time.Second) // the window the CPU use is measured over, not a wait for a state
	cpus := float64(processCPU(t)-cpu0) / float64(time.Since(wall0))
	wg.Wait()
	waits := e.Stats().LongWaits
	t.Logf("%d spinners on %d slots used %.2f CPUs; long waits %d", n, n, cpus, waits)
	if cpus > float64(n-1)+0.5 {
		t.Errorf("%d long spinners used %.2f CPUs, want at most %d and a half", n, cpus, n-1)
	}
	if waits == 0 {
		t.Error("no long guest ever waited for a long slot")
	}
}

// TestShortGuestsAreNotLong queues many more matrix multiplications (a
// few ms of CPU each) than there are slots: their wall time is long, their
// CPU time short, so none of them becomes long-running and they keep every
// CPU slot.
func TestShortGuestsAreNotLong(t *testing.T) {
	e := newEngine(t, wasm.Config{})
	m := compile(t, e, "matrixmult", wasm.Limits{})
	var wg sync.WaitGroup
	start := time.Now()
	for range 4 * wasm.GuestSlots() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				if _, err := invoke(t, e, m, `{"n":100,"seed":42}`); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if waits := e.Stats().LongWaits; waits != 0 {
		t.Errorf("%d long waits among short calls (%s in all)", waits, time.Since(start))
	}
}

// processCPU is the CPU time this process has used.
func processCPU(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
		{72 << 20, wasm.GCFloor}, // a 128 MiB cgroup
		{32 << 20, 4 << 20},
		{8 << 20, 1 << 20},
	} {
		if got := int64(wasm.GCFloorFor(c.limit)); got != c.want {
			t.Errorf("limit %d: floor %d, want %d", c.limit, got, c.want)
		}
	}
}
