package reliability_test

import (
	"fmt"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestSpinningNeighbours runs, through a real core and worker, as many
// guests spinning until their timeout as the machine has cores, beside a
// C hello: the hello's p99 latency among spinners must stay within
// neighbourBound × its calm p99. Calm and noisy phases alternate, so that
// the other load on the machine falls on both alike.
//
// The bound is 3×; what was measured on the way to it (long slots, the
// long guests' scheduler slice, external nice loops) is in
// docs/RATIONALE.md#why-long-slots-and-the-scheduler-slice.
func TestSpinningNeighbours(t *testing.T) {
	core := testcluster.StartCore(t)
	core.StartWorker(t, "127.0.0.2")
	cl := core.Client(core.Guest)
	const spinTimeout = time.Second
	if _, err := cl.CreateFunction(ctxT(t), "_", client.Upload{Name: "spin", Code: testmodules.Read(t, "test/spin"),
		Metadata: &client.Metadata{TimeoutMS: int64(spinTimeout / time.Millisecond)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateFunction(ctxT(t), "_", client.Upload{Name: "hello", Code: testmodules.Read(t, "hello-c")}); err != nil {
		t.Fatal(err)
	}
	hello := func() time.Duration {
		o := call(cl, "_", "hello", `{"name":"neighbour"}`, time.Minute, 0)
		if o.status != 200 {
			t.Fatalf("hello: %d %s", o.status, o.detail)
		}
		return o.took
	}
	for range 20 { // warm up: compiled, and the paths are hot
		hello()
	}

	spinners := runtime.NumCPU()
	const rounds, perPhase = 6, 150 // p99 of 900 calls each: the 9th slowest
	// A measurement is a p99 over 900 calls on a shared machine, where other
	// work alone can move it 3×: up to three measurements are made, and the
	// test passes when one of them holds. Without the long slots most are
	// above 3×, without the guest scheduling every one is ~×28.
	const attempts = 3
	for attempt := 1; ; attempt++ {
		inFlight := func() float64 { return core.Metric(t, "edgefaas_invocations_in_flight") }
		ratio, ok := measureNeighbours(t, cl, hello, inFlight, spinners, rounds, perPhase)
		if ok {
			return
		}
		if attempt == attempts {
			t.Fatalf("in %d measurements the spinners raised the hello's p99 by more than %g× (last ×%.1f)", attempts, neighbourBound, ratio)
		}
		t.Logf("measurement %d: ×%.2f > %g; measuring again (the machine is shared)", attempt, ratio, neighbourBound)
	}
}

// neighbourBound is the most the spinners may raise a neighbour's p99.
const neighbourBound = 3.0

// measureNeighbours alternates calm and noisy phases and reports the ratio
// of the hello's p99s and whether it is within neighbourBound.
// inFlight is the calls sent to the worker and not yet answered.
func measureNeighbours(t *testing.T, cl *client.Client, hello func() time.Duration, inFlight func() float64, spinners, rounds, perPhase int) (float64, bool) {
	t.Helper()
	var calm, noisy []time.Duration
	var spun, spinTimeouts atomic.Int64
	for range rounds {
		for range perPhase {
			calm = append(calm, hello())
		}

		stop := make(chan struct{})
		var wg sync.WaitGroup
		var running sync.WaitGroup
		running.Add(spinners)
		for i := range spinners {
			wg.Add(1)
			go func() {
				defer wg.Done()
				first := true
				for {
					if first {
						running.Done()
						first = false
					}
					o := call(cl, "_", "spin", `{}`, time.Minute, 0)
					spun.Add(1)
					if o.status == 504 {
						spinTimeouts.Add(1)
					} else {
						t.Errorf("spinner %d: %d %s, want 504", i, o.status, o.detail)
					}
					select {
					case <-stop:
						return
					default:
					}
				}
			}()
		}
		running.Wait()
		wait.For(t, time.Minute, "the spinners' calls at the worker", func() bool { return inFlight() >= float64(spinners) })
		// Part of the scenario, not a synchronisation: the noisy phase is
		// measured beside spinners that have already run past the 50 ms of
		// slot time after which the worker treats a guest as long-running
		// (docs/RATIONALE.md#why-long-slots-and-the-scheduler-slice); the
		// worker exposes no signal for that moment.
		time.Sleep(100 * time.Millisecond)
		for range perPhase {
			noisy = append(noisy, hello())
		}
		close(stop)
		wg.Wait()
	}

	p99 := func(ds []time.Duration) time.Duration {
		s := append([]time.Duration(nil), ds...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[len(s)*99/100]
	}
	p50 := func(ds []time.Duration) time.Duration {
		s := append([]time.Duration(nil), ds...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[len(s)/2]
	}
	calm99, noisy99 := p99(calm), p99(noisy)
	ratio := float64(noisy99) / float64(calm99)
	t.Logf("C hello beside %d spinners (%d spin calls, %d timed out): p50 %s calm, %s noisy; p99 %s calm, %s noisy (×%.2f)",
		spinners, spun.Load(), spinTimeouts.Load(), p50(calm), p50(noisy), calm99, noisy99, ratio)
	if spinTimeouts.Load() < int64(spinners*rounds) {
		t.Fatalf("only %d spin calls timed out, want at least %d: the noise was not there", spinTimeouts.Load(), spinners*rounds)
	}
	if ratio > neighbourBound {
		return ratio, false
	}
	record(row{Test: "spinning neighbours", Sent: len(calm) + len(noisy), Answered: len(calm) + len(noisy),
		Note: fmt.Sprintf("C hello p99 %s calm, %s beside %d spinners (×%.2f)", calm99.Round(time.Microsecond), noisy99.Round(time.Microsecond), spinners, ratio)})
	return ratio, true
}
