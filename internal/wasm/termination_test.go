package wasm_test

import (
	"errors"
	"math"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/wait"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// TestTimeoutStopsGuest runs guests that never return: an infinite loop,
// and a tree of calls with no loop at all (only function entries are
// checked there). Each must end with ErrTimeout after its deadline and
// well before a generous bound of it.
func TestTimeoutStopsGuest(t *testing.T) {
	e := newEngine(t, wasm.Config{})
	const timeout = 300 * time.Millisecond
	for _, name := range []string{"test/spin", "test/calltree"} {
		t.Run(name, func(t *testing.T) {
			m := compile(t, e, name, wasm.Limits{Timeout: timeout})
			start := time.Now()
			_, err := invoke(t, e, m, `{}`)
			took := time.Since(start)
			t.Logf("stopped after %s (timeout %s)", took, timeout)
			if !errors.Is(err, wasm.ErrTimeout) {
				t.Fatalf("err = %v, want ErrTimeout", err)
			}
			if took < timeout {
				t.Fatalf("stopped after %s, before its deadline %s", took, timeout)
			}
			if took > 10*timeout {
				t.Fatalf("stopped after %s, more than 10× its deadline %s", took, timeout)
			}
		})
	}
}

// TestSpinnersLeaveSchedulerAndGC fills every P with a spinning guest for
// seconds while a ticker goroutine and forced garbage collections run in
// the same process. Compiled guest code cannot be preempted: only its
// periodic exits to Go let the scheduler run the ticker and let the GC's
// stop-the-world complete. Without them the world could not stop until the
// spinners' timeout; here the longest wait to stop it (the runtime's own
// histogram) and the worst tick gap must be a small fraction of the spin,
// and the GCs must complete while the guests still spin. (A whole
// runtime.GC() also needs CPU for marking, which it shares with the
// spinners as it would with any busy goroutine: it is bounded loosely.)
// The bounds are fractions of a 4 s spin that leave room for a machine
// other processes load (two shared cores at a load of 20 gave 470 ms tick
// gaps and 335 ms stops with 2 s spins), while a stalled runtime would
// show the whole spin in each.
func TestSpinnersLeaveSchedulerAndGC(t *testing.T) {
	e := newEngine(t, wasm.Config{})
	const spinFor = 4 * time.Second
	spin := compile(t, e, "test/spin", wasm.Limits{Timeout: spinFor})
	spinners := runtime.GOMAXPROCS(0)

	var wg sync.WaitGroup
	start := time.Now()
	spinTook := make([]time.Duration, spinners)
	for i := range spinners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := invoke(t, e, spin, `{}`); !errors.Is(err, wasm.ErrTimeout) {
				t.Errorf("spin: %v", err)
			}
			spinTook[i] = time.Since(start)
		}()
	}
	wait.For(t, time.Minute, "the spinners run", func() bool { return e.Stats().Running >= spinners })

	stopping := stopTheWorldWaits()
	stop := make(chan struct{})
	tickerDone := make(chan time.Duration)
	go func() {
		const every = 5 * time.Millisecond
		tk := time.NewTicker(every)
		defer tk.Stop()
		last, worst := time.Now(), time.Duration(0)
		for {
			select {
			case <-stop:
				tickerDone <- worst
				return
			case now := <-tk.C:
				worst = max(worst, now.Sub(last))
				last = now
			}
		}
	}()
	var gcs int
	var slowestGC time.Duration
	for time.Since(start) < spinFor/2 {
		t0 := time.Now()
		runtime.GC()
		slowestGC = max(slowestGC, time.Since(t0))
		gcs++
		time.Sleep(20 * time.Millisecond) // paces the collections: a load, not a wait for a state
	}
	gcDone := time.Since(start)
	worstStop := stopTheWorldWaits().worstSince(stopping)
	close(stop)
	worstTick := <-tickerDone
	wg.Wait()
	shortest := spinTook[0]
	for _, d := range spinTook {
		shortest = min(shortest, d)
	}
	t.Logf("%d spinners ran ≥ %s; %d GCs done after %s, slowest %s, longest wait to stop the world ≤ %s; worst ticker gap %s",
		spinners, shortest, gcs, gcDone, slowestGC, worstStop, worstTick)
	if gcDone >= shortest {
		t.Fatalf("the GCs finished after the spinners (%s >= %s): they were stalled", gcDone, shortest)
	}
	if worstStop > shortest/8 {
		t.Fatalf("stopping the world took up to %s, more than an eighth of the spin %s", worstStop, shortest)
	}
	if slowestGC > shortest/2 {
		t.Fatalf("slowest GC %s is more than half the spin %s", slowestGC, shortest)
	}
	// The ticker waits for a spinner to be preempted (Go's sysmon does it
	// after 10 ms), on a machine other processes load too.
	if worstTick > shortest/4 {
		t.Fatalf("worst ticker gap %s is more than a quarter of the spin %s", worstTick, shortest)
	}
}

// TestInterpreterStillStops runs the spinner and a hello on wazero's
// interpreter, which has its own termination check.
func TestInterpreterStillStops(t *testing.T) {
	e := newEngine(t, wasm.Config{Interpreter: true})
	m := compile(t, e, "test/spin", wasm.Limits{Timeout: 200 * time.Millisecond})
	if _, err := invoke(t, e, m, `{}`); !errors.Is(err, wasm.ErrTimeout) {
		t.Fatalf("spin: err = %v, want ErrTimeout", err)
	}
	hello := compile(t, e, "hello-c", wasm.Limits{})
	res, err := invoke(t, e, hello, `{"name":"edge"}`)
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, res.Output, `{"message":"Hello, edge!"}`)
}

// stopWaits is the runtime's histogram of how long stopping the world for
// the GC took.
type stopWaits struct{ h *metrics.Float64Histogram }

func stopTheWorldWaits() stopWaits {
	s := []metrics.Sample{{Name: "/sched/pauses/stopping/gc:seconds"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		panic("runtime/metrics has no " + s[0].Name)
	}
	return stopWaits{s[0].Value.Float64Histogram()}
}

// worstSince is the upper bound of the longest wait recorded after before.
func (w stopWaits) worstSince(before stopWaits) time.Duration {
	for i := len(w.h.Counts) - 1; i >= 0; i-- {
		if w.h.Counts[i] > before.h.Counts[i] {
			upper := w.h.Buckets[i+1]
			if math.IsInf(upper, 1) {
				upper = w.h.Buckets[i]
			}
			return time.Duration(upper * float64(time.Second))
		}
	}
	return 0
}
