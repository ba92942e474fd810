package wasm

import (
	"context"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// Compiled guest code holds its goroutine's P (Go's right to run Go code)
// and is only preempted at its termination checks; with as many guests
// computing as there are Ps, the node's own goroutines (HTTP, actors,
// heartbeats) wait for Go's 10 ms preemption at every step and a neighbour's
// latency explodes. So an engine keeps one P free of guest code: it raises
// GOMAXPROCS by one above the CPUs Go found (once per process), and guest
// code runs in at most that many CPU slots. A guest gives its slot up while
// it waits in a host call (outbound requests, WASI sleeps) and, when others
// wait for one, at its first termination check after sliceQuantum of
// holding it: guests share the CPUs round-robin, so no number of spinning
// guests keeps a new invocation waiting longer than about a quantum per
// slot-holder ahead of it; and a guest computing for long runs at a lower OS
// priority (nice_linux.go). Guests that have computed for longer than
// longAfter share one CPU fewer than the slots (longSlots): see there. See
// docs/architecture.md, "Guest scheduling".
const sliceQuantum = 250 * time.Microsecond

// A guest that has held a CPU slot for longer than longAfter in all is
// long-running (a runaway loop, a batch computation), and from then on
// computes only while it holds one of longSlots long slots: one fewer than
// the CPU slots (and at least one), which long guests share round-robin,
// handing theirs over at their first check after longQuantum when another
// long guest waits. However many guests spin, one CPU stays free of them
// for the node, for the core and clients on the same machine, and for
// short calls, which never wait for a long guest to yield: with both CPUs
// of a 2-core worker computing, every wakeup of the node's threads has to
// preempt a guest, and the kernel lets a running thread finish its slice
// first (HZ 250: up to 4 ms). Measured beside two spinners on the 2-core
// test machine (tests/reliability/neighbours_test.go), a C hello's p99 went
// from 4.1–4.7 ms to 2.3–3.5 ms (its calm p99 is 0.8–1.3 ms). A call's own
// CPU time, not its wall time, counts: a 6 ms matrix multiplication queued
// among 16 others is not long-running, and keeps every CPU.
const (
	longAfter   = 50 * time.Millisecond
	longQuantum = 10 * time.Millisecond
)

// longSlotCount is how many long-running guests compute at once on slots
// CPU slots.
func longSlotCount(slots int) int { return max(1, slots-1) }

// gcFloor is the heap the process keeps reserved, so that its garbage
// collector runs less often: every cycle stops the world twice and scans
// every goroutine's stack, and a guest computing holds its P until its next
// termination check. With the heap of a few MiB a worker lives on, Go
// collected every 100-odd calls; the floor is an untouched pointer-free
// allocation that raises the heap goal: it costs address space, not RSS,
// but lets up to about as much garbage accumulate between collections,
// which is RSS. Measured in one run of the neighbours test each (1,800 C
// hellos beside spinners, with the long slots): no floor, 19 collections
// and a worker peak of 44.8 MB; 8 MiB, 5 and 48.8 MB; 32 MiB (the floor
// before the long slots), 2 and 60.5 MB, and the hello's p99 beside the
// spinners was no better with any floor than without. So it is small.
//
// It is at most an eighth of the Go runtime's soft memory limit
// (GOMEMLIMIT, which a node sets from its budget before it starts an
// engine): the floor counts against that limit.
const gcFloor = 8 << 20

// gcFloorFor is the floor under the soft memory limit limit.
func gcFloorFor(limit int64) int {
	if limit <= 0 || limit/8 >= gcFloor {
		return gcFloor
	}
	return int(limit / 8)
}

var (
	procsOnce sync.Once
	guestCPUs int
	gcBallast []byte
)

// guestSlotCount raises GOMAXPROCS and sets the GC floor once, and returns
// how many guests may run guest code at once: the Ps Go chose (the CPUs, or
// the container's quota).
func guestSlotCount() int {
	procsOnce.Do(func() {
		guestCPUs = runtime.GOMAXPROCS(0)
		runtime.GOMAXPROCS(guestCPUs + 1)
		gcBallast = make([]byte, gcFloorFor(debug.SetMemoryLimit(-1)))
	})
	return guestCPUs
}

// newEngineSlots returns an engine's CPU slots, or nil (no limit) when its
// guests run on wazero's interpreter: interpreted guests are Go code, which
// Go preempts like any other, so they cannot starve the node of Ps.
func newEngineSlots(cfg Config) *cpuSlots {
	if cfg.Interpreter || (runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64") {
		return nil
	}
	return newCPUSlots(guestSlotCount())
}

// cpuSlots are the engine's CPU slots for guest code, and the long slots
// of its long-running guests.
type cpuSlots struct {
	sem     chan struct{}
	waiting atomic.Int32

	long        chan struct{}
	longWaiting atomic.Int32
	longWaits   atomic.Int64 // times a long guest waited for a long slot
}

func newCPUSlots(n int) *cpuSlots {
	return &cpuSlots{sem: make(chan struct{}, n), long: make(chan struct{}, longSlotCount(n))}
}

func (s *cpuSlots) acquire(ctx context.Context) error {
	select {
	case s.sem <- struct{}{}:
		return nil
	default:
	}
	s.waiting.Add(1)
	defer s.waiting.Add(-1)
	select {
	case s.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *cpuSlots) release() { <-s.sem }

// cpuHold is one invocation's claim on a slot (none if slots is nil).
type cpuHold struct {
	slots *cpuSlots
	held  bool
	since time.Time     // when the slot was taken
	ran   time.Duration // the slot time of the call before since

	long      bool // holds a long slot
	longSince time.Time
}

// take waits for a slot.
func (h *cpuHold) take(ctx context.Context) error {
	if h.held || h.slots == nil {
		return nil
	}
	if err := h.slots.acquire(ctx); err != nil {
		return err
	}
	h.held, h.since = true, time.Now()
	return nil
}

// drop gives the slot up, if held.
func (h *cpuHold) drop() {
	if h.held {
		h.held = false
		h.ran += time.Since(h.since)
		h.slots.release()
	}
}

// idle gives up the slot and the long slot, if held: the guest stops
// computing (a host call that waits, the end of the call). A long guest
// takes a long slot again at its next check.
func (h *cpuHold) idle() {
	h.drop()
	if h.long {
		h.long = false
		<-h.slots.long
	}
}

// takeLong waits for a long slot, holding no CPU slot meanwhile, then for
// a CPU slot. Should the call's context end first, the guest goes on
// without them until the check that follows stops it.
func (h *cpuHold) takeLong(ctx context.Context) {
	h.drop()
	select {
	case h.slots.long <- struct{}{}:
	default:
		h.slots.longWaits.Add(1)
		h.slots.longWaiting.Add(1)
		select {
		case h.slots.long <- struct{}{}:
			h.slots.longWaiting.Add(-1)
		case <-ctx.Done():
			h.slots.longWaiting.Add(-1)
			return
		}
	}
	h.long, h.longSince = true, time.Now()
	_ = h.take(ctx)
}

// schedule is the long-guest part of a termination check at time now; it
// reports whether it moved the guest (so the check does nothing more).
func (h *cpuHold) schedule(ctx context.Context, now time.Time) bool {
	if !h.long {
		if h.ran+now.Sub(h.since) < longAfter {
			return false
		}
		h.takeLong(ctx)
		return true
	}
	if h.slots.longWaiting.Load() == 0 || now.Sub(h.longSince) < longQuantum {
		return false
	}
	h.idle()
	runtime.Gosched()
	h.takeLong(ctx)
	return true
}

// checkHook runs at each termination check of a guest (the patched
// wazero's experimental.WithTerminationCheckHook): it hands the slot over
// when others wait and the guest held it a quantum. Should the call's
// context end while it waits, the guest goes on without a slot until the
// check that follows stops it.
func checkHook(ctx context.Context) {
	st := callFrom(ctx)
	if st == nil {
		return
	}
	now := time.Now() // the check's one clock read
	st.prio.maybeLower(now)
	if st.cpu == nil || !st.cpu.held || st.cpu.schedule(ctx, now) ||
		st.cpu.slots.waiting.Load() == 0 || now.Sub(st.cpu.since) < sliceQuantum {
		return
	}
	st.cpu.drop()
	runtime.Gosched()
	_ = st.cpu.take(ctx)
}

// blocking runs f, a host call that waits (outbound I/O, sleeps), with the
// call's slots given up meanwhile.
func (st *callState) blocking(ctx context.Context, f func()) {
	if st.cpu == nil || !st.cpu.held {
		f()
		return
	}
	st.cpu.idle()
	defer func() { _ = st.cpu.take(ctx) }()
	f()
}

// withGuestScheduling is ctx for instantiating WASI: its poll_oneoff (the
// sleep of Go's and C's runtimes) gives the call's slot up while it waits.
func withGuestScheduling(ctx context.Context) context.Context {
	return experimental.WithFunctionListenerFactory(ctx, sleepListener{})
}

type sleepListener struct{}

func (sleepListener) NewFunctionListener(def api.FunctionDefinition) experimental.FunctionListener {
	if def.Name() != "poll_oneoff" {
		return nil
	}
	return sleepListener{}
}

func (sleepListener) Before(ctx context.Context, _ api.Module, _ api.FunctionDefinition, _ []uint64, _ experimental.StackIterator) {
	if st := callFrom(ctx); st != nil && st.cpu != nil {
		st.cpu.idle()
	}
}

func (sleepListener) After(ctx context.Context, _ api.Module, _ api.FunctionDefinition, _ []uint64) {
	if st := callFrom(ctx); st != nil && st.cpu != nil {
		_ = st.cpu.take(ctx)
	}
}

func (sleepListener) Abort(ctx context.Context, m api.Module, def api.FunctionDefinition, _ error) {
	sleepListener{}.After(ctx, m, def, nil)
}

// longWaits is the engine's Stats.LongWaits.
func (e *Engine) longWaits() int64 {
	if e.slots == nil {
		return 0
	}
	return e.slots.longWaits.Load()
}
