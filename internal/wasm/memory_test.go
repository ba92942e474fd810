package wasm_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// TestMemoryBudgetHolds starts N concurrent calls of a function that fills
// its memory limit, N × limit far above the engine's budget, beside calls
// of a small healthy function and of a slow one: every call is answered (success, ErrBusy or
// ErrMemoryLimit), the reserved memory never exceeds the budget, and it
// returns to nothing once the functions are gone.
func TestMemoryBudgetHolds(t *testing.T) {
	const (
		budget = 80 << 20 // 48 MiB for code (sleep is a Go module: ~20 MiB, twice that compiling), 32 for instances
		pages  = 256      // 16 MiB per membomb instance
		n      = 24       // 24 × 16 MiB = 384 MiB asked for
	)
	e := newEngine(t, wasm.Config{MemoryBudget: budget, CodeBudget: 48 << 20, MaxConcurrent: 16, MaxQueue: 8})
	bomb := compile(t, e, "test/membomb", wasm.Limits{MemoryPages: pages})
	echo := compile(t, e, "test/echo", wasm.Limits{MemoryPages: 32})
	slow := compile(t, e, "sleep", wasm.Limits{MemoryPages: pages})

	var wg sync.WaitGroup
	type answer struct {
		fn  string
		err error
	}
	answers := make(chan answer, 3*n)
	for i := range 3 * n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, fn, in := bomb, "membomb", `"x"`
			switch i % 3 {
			case 1:
				m, fn = echo, "echo"
			case 2:
				m, fn, in = slow, "sleep", `{"ms":300}`
			}
			_, err := e.Invoke(context.Background(), m, wasm.Invocation{Function: "test/" + fn, Input: []byte(in)})
			answers <- answer{fn, err}
		}()
	}
	wg.Wait()
	close(answers)
	count := map[string]int{}
	for a := range answers {
		switch {
		case a.err == nil && a.fn != "membomb":
			count[a.fn+" ok"]++
		case errors.Is(a.err, wasm.ErrBusy):
			count[a.fn+" busy"]++
		case errors.Is(a.err, wasm.ErrMemoryLimit) && a.fn == "membomb":
			count["membomb memory limit"]++
		default:
			t.Errorf("%s: unexpected answer %v", a.fn, a.err)
		}
	}
	s := e.Stats()
	t.Logf("answers %v; stats %+v", count, s)
	if count["membomb memory limit"] == 0 || count["echo ok"] == 0 || count["sleep ok"] == 0 {
		t.Fatalf("no call ran to its end: %v", count)
	}
	if s.MemoryReservedPeak > budget {
		t.Fatalf("reserved peaked at %d bytes, above the budget of %d", s.MemoryReservedPeak, budget)
	}
	if s.MemoryReservedPeak < 2*pages*wasm.PageSize {
		t.Fatalf("peak %d: the bombs never ran side by side, the test proves nothing", s.MemoryReservedPeak)
	}
	if s.MemoryBudget != budget || s.CodeBytes == 0 {
		t.Fatalf("stats %+v", s)
	}
	// The engine still serves, then gives everything back.
	if _, err := invoke(t, e, echo, `"still here"`); err != nil {
		t.Fatal(err)
	}
	e.Evict(context.Background(), bomb.Hash)
	e.Evict(context.Background(), echo.Hash)
	e.Evict(context.Background(), slow.Hash)
	wait.For(t, time.Minute, "reserved memory back to 0", func() bool {
		s := e.Stats()
		return s.MemoryReserved == 0 && s.InstancesLive == 0 && s.CodeBytes == 0
	})
}

// TestGrowBeyondBudget: a function whose limit is above the whole budget
// runs alone, and its growth past the budget ends in ErrMemoryLimit (it
// could never fit), not in an OOM.
func TestGrowBeyondBudget(t *testing.T) {
	e := newEngine(t, wasm.Config{MemoryBudget: 16 << 20, CodeBudget: 4 << 20})
	bomb := compile(t, e, "test/membomb", wasm.Limits{MemoryPages: 1024}) // 64 MiB > 12 MiB for instances
	_, err := invoke(t, e, bomb, `{}`)
	if !errors.Is(err, wasm.ErrMemoryLimit) {
		t.Fatalf("error %v, want ErrMemoryLimit", err)
	}
	if s := e.Stats(); s.MemoryReservedPeak > 16<<20 || s.MemoryReserved != s.CodeBytes {
		t.Fatalf("stats %+v", s)
	}
}

// TestIdleShrinksToZero: after a burst, idle pooled instances expire and
// so does the unused compiled code: the engine holds no memory at all.
func TestIdleShrinksToZero(t *testing.T) {
	e := newEngine(t, wasm.Config{MemoryBudget: 256 << 20, PoolIdleTTL: 100 * time.Millisecond, CodeIdleTTL: 300 * time.Millisecond})
	m := compile(t, e, "hello", wasm.Limits{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				if _, err := invoke(t, e, m, `{}`); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if s := e.Stats(); s.InstancesLive == 0 || s.InstancesLive > 4 {
		t.Fatalf("after the burst %d instances are kept, want 1-4 (at most the 4 calls that ran at once)", s.InstancesLive)
	}
	wait.For(t, time.Minute, "pools empty", func() bool { return e.Stats().InstancesLive == 0 })
	wait.For(t, time.Minute, "code expired", func() bool { s := e.Stats(); return s.Modules == 0 && s.MemoryReserved == 0 })
	if s := e.Stats(); s.CodeEvictions != 1 {
		t.Fatalf("stats %+v", s)
	}
	// An expired module is compiled again on demand.
	m = compile(t, e, "hello", wasm.Limits{})
	if _, err := invoke(t, e, m, `{}`); err != nil {
		t.Fatal(err)
	}
}

// TestIdleInstancesYieldMemory: an idle pooled instance that holds memory
// is closed when another function needs it, rather than the call waiting
// or being refused.
func TestIdleInstancesYieldMemory(t *testing.T) {
	e := newEngine(t, wasm.Config{MemoryBudget: 40 << 20, CodeBudget: 8 << 20, MaxQueue: 0, RecycleAbovePages: 1024})
	echo := compile(t, e, "test/echo", wasm.Limits{MemoryPages: 512, MaxInputBytes: 16 << 20, MaxOutputBytes: 16 << 20})
	other := compile(t, e, "test/bigmin", wasm.Limits{MemoryPages: 384}) // declares 20 MiB: reserves 24 of 32
	// echo copies a 12 MiB input: its idle instance keeps what it committed.
	big := `"` + strings.Repeat("x", 12<<20) + `"`
	if _, err := invoke(t, e, echo, big); err != nil {
		t.Fatal(err)
	}
	s := e.Stats()
	if s.InstancesLive != 1 || s.MemoryReserved-s.CodeBytes < 10<<20 {
		t.Fatalf("echo's instance is not idle in its pool with its memory: %+v", s)
	}
	if _, err := invoke(t, e, other, `{}`); err != nil {
		t.Fatalf("a call was refused while an idle instance held the memory: %v", err)
	}
	if s := e.Stats(); s.IdleReclaimed != 1 {
		t.Fatalf("the idle instance was not reclaimed: %+v", s)
	}
}

// TestPoolsPerOwner: two tenants running identical code never share a
// warm instance (docs/RATIONALE.md#why-the-memory-budget-and-admission-rules).
func TestPoolsPerOwner(t *testing.T) {
	e := newEngine(t, wasm.Config{})
	code := testmodules.Read(t, "hello")
	a, err := e.Compile(context.Background(), code, wasm.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Compile(context.Background(), code, wasm.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	call := func(m *wasm.Module, owner string) bool {
		t.Helper()
		res, err := e.Invoke(context.Background(), m, wasm.Invocation{Function: owner + "/hello", Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		return res.Warm
	}
	if call(a, "alice") || !call(a, "alice") {
		t.Fatal("alice's second call was not warm")
	}
	if call(b, "bob") {
		t.Fatal("bob was served alice's warm instance")
	}
	if !call(a, "alice") || !call(b, "bob") {
		t.Fatal("each owner's own instance is not reused")
	}
}

// TestEvictDoesNotStallNewCalls: while an evicted version's call in
// flight finishes, new calls of it answer ErrEvicted at once instead of
// queueing behind it (docs/RATIONALE.md#why-the-memory-budget-and-admission-rules).
func TestEvictDoesNotStallNewCalls(t *testing.T) {
	e := newEngine(t, wasm.Config{})
	m := compile(t, e, "sleep", wasm.Limits{})
	done := make(chan error, 1)
	go func() {
		_, err := invoke(t, e, m, `{"ms":5000}`)
		done <- err
	}()
	wait.For(t, time.Minute, "the long call runs", func() bool { return e.Stats().Running == 1 })
	e.Evict(context.Background(), m.Hash)
	wait.For(t, time.Minute, "the eviction waits for the call in flight", m.Retiring)
	answered := make(chan error, 1)
	go func() {
		_, err := invoke(t, e, m, `{"ms":1}`)
		answered <- err
	}()
	select {
	case err := <-answered:
		if !errors.Is(err, wasm.ErrEvicted) {
			t.Fatalf("new call: %v, want ErrEvicted", err)
		}
		select {
		case <-done:
			t.Fatal("the long call ended first: the test proves nothing")
		default:
		}
	case err := <-done:
		t.Fatalf("the new call waited for the call in flight to end (%v)", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the call in flight failed: %v", err)
	}
}

// TestRefusedGrowthRunsAgain: a guest whose memory outgrows what its
// instance was admitted with while another call holds the rest of the
// budget is refused the memory mid-call. It had made no outbound request,
// so the engine runs it again, admitted with what it asked for (waiting
// for the other call to end), and the caller sees a success, not busy.
func TestRefusedGrowthRunsAgain(t *testing.T) {
	e := newEngine(t, wasm.Config{MemoryBudget: 80 << 20, CodeBudget: 48 << 20, MaxQueue: 8, RecycleAbovePages: 1024})
	echo := compile(t, e, "test/echo", wasm.Limits{MemoryPages: 512, MaxInputBytes: 16 << 20, MaxOutputBytes: 16 << 20})
	slow := compile(t, e, "sleep", wasm.Limits{MemoryPages: 320, MaxInputBytes: 16 << 20})
	// A small first call: echo's bound becomes about 1 MiB.
	if _, err := invoke(t, e, echo, `"x"`); err != nil {
		t.Fatal(err)
	}
	// A first call of the sleeper with a large input it ignores: its
	// instance grows, and its bound becomes its whole 20 MiB.
	pad := `{"ms":1,"pad":"` + strings.Repeat("x", 14<<20) + `"}`
	if _, err := e.Invoke(context.Background(), slow, wasm.Invocation{Function: "test/sleep", Input: []byte(pad)}); err != nil {
		t.Fatalf("sleeper's first call: %v", err)
	}
	held := make(chan error, 1)
	go func() {
		_, err := e.Invoke(context.Background(), slow, wasm.Invocation{Function: "test/sleep", Input: []byte(`{"ms":5000}`)})
		held <- err
	}()
	wait.For(t, time.Minute, "the sleeping call holds its memory", func() bool {
		s := e.Stats()
		return s.Running == 1 && s.MemoryReserved-s.CodeBytes >= 20<<20
	})
	// 12 MiB in and out: the guest grows to about 25 MiB, more than the
	// 11 MiB left beside the sleeping call.
	big := `"` + strings.Repeat("x", 12<<20) + `"`
	res, err := e.Invoke(context.Background(), echo, wasm.Invocation{Function: "test/echo", Input: []byte(big)})
	if err != nil {
		t.Fatalf("refused growth was answered %v; want the call run again", err)
	}
	if len(res.Output) != len(big) {
		t.Fatalf("output of %d bytes, want %d", len(res.Output), len(big))
	}
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if s := e.Stats(); s.Reruns != 1 {
		t.Fatalf("reruns %d, want 1 (the growth was never refused: the test proves nothing?): %+v", s.Reruns, s)
	}
}

// TestFirstCallDoesNotHoldTheLimit: the first call of a new function
// reserves what its module declares it starts with, not its memory limit.
// With the limit reserved, a first call that sleeps would hold a small
// node's whole instance budget (the limit exceeds it, so it ran alone) and
// another function's call would wait for it to end.
func TestFirstCallDoesNotHoldTheLimit(t *testing.T) {
	// 16 MiB for instances, under the sleeper's 64 MiB limit.
	e := newEngine(t, wasm.Config{MemoryBudget: 64 << 20, CodeBudget: 48 << 20, MaxQueue: 8})
	slow := compile(t, e, "sleep", wasm.Limits{MemoryPages: 1024})
	echo := compile(t, e, "test/echo", wasm.Limits{MemoryPages: 32})
	held := make(chan error, 1)
	go func() {
		_, err := e.Invoke(context.Background(), slow, wasm.Invocation{Function: "test/sleep", Input: []byte(`{"ms":10000}`)})
		held <- err
	}()
	wait.For(t, time.Minute, "the sleeping call runs", func() bool { return e.Stats().Running == 1 })
	if _, err := invoke(t, e, echo, `"x"`); err != nil {
		t.Fatalf("a call beside the sleeping first call: %v", err)
	}
	select {
	case err := <-held:
		t.Fatalf("the call beside the sleeping first call waited for it to end (%v)", err)
	default:
	}
	if err := <-held; err != nil {
		t.Fatal(err)
	}
}
