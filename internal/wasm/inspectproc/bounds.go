package inspectproc

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sync/semaphore"

	"github.com/edgefaas/edgefaas/internal/wasm"
)

// Bounds limit what upload validation may cost the core besides memory:
// the CPU time of each child and how many run at once. Validation is
// reachable by any token holder, so neither may be unbounded.
type Bounds struct {
	// CPUSeconds is each child's RLIMIT_CPU (default DefaultCPUSeconds):
	// a module that makes the validator spin is killed, and refused.
	CPUSeconds uint64
	// Concurrent is how many children of the smallest bound (Memory)
	// may run at once (default: the number of CPUs, ≥ 2): the children
	// are admitted by their bounds against Concurrent × Memory.
	Concurrent int
	// Queue is how many more validations may wait for memory (default
	// 4×Concurrent); beyond that a validation fails at once with an error
	// wrapping wasm.ErrBusy (the API answers 429 with Retry-After).
	Queue int
	// Memory is each child's memory share before its code's size is added
	// (default DefaultMemory): the child runs in its own memory cgroup
	// with that limit where the core may make one, else a watchdog kills
	// it when its resident size passes it. Beyond it the upload is
	// refused with wasm.ErrValidationMemory.
	Memory int64
}

// DefaultCPUSeconds is a child's CPU time bound: validating the largest
// upload (64 MiB) with the interpreter takes a few seconds.
const DefaultCPUSeconds = 60

func (b Bounds) withDefaults() Bounds {
	if b.CPUSeconds == 0 {
		b.CPUSeconds = DefaultCPUSeconds
	}
	if b.Memory <= 0 {
		b.Memory = DefaultMemory
	}
	if b.Concurrent <= 0 {
		b.Concurrent = max(2, runtime.NumCPU())
	}
	if b.Queue < 0 {
		b.Queue = 0
	} else if b.Queue == 0 {
		b.Queue = 4 * b.Concurrent
	}
	return b
}

// gate admits validations by memory: each child reserves the bound it
// is held to (childBound), out of Concurrent × Memory in all, so what the
// children may take at once never exceeds what the core's budget set
// aside for them, whatever the uploads' sizes. A validation that does not
// fit waits, at most Queue of them; beyond that it is refused at once.
type gate struct {
	total   int64
	mem     *semaphore.Weighted
	waiting chan struct{}
}

func newGate(b Bounds) *gate {
	total := int64(b.Concurrent) * b.Memory
	return &gate{total: total, mem: semaphore.NewWeighted(total), waiting: make(chan struct{}, b.Queue)}
}

// childBound is the memory bound of the child validating code: its share
// plus codeFactor times the code, at most everything the validators may
// take (a larger upload is validated alone, within that).
func (g *gate) childBound(share int64, code int) int64 {
	return min(childLimit(share, code), g.total)
}

// enter reserves n bytes, waiting (within ctx) only if the queue has
// room.
func (g *gate) enter(ctx context.Context, n int64) error {
	if g.mem.TryAcquire(n) {
		return nil
	}
	select {
	case g.waiting <- struct{}{}:
	default:
		return fmt.Errorf("%w: upload validation holds its memory (%d MiB; this upload's validator may take %d MiB) and %d more wait; retry shortly",
			wasm.ErrBusy, g.total>>20, n>>20, cap(g.waiting))
	}
	defer func() { <-g.waiting }()
	return g.mem.Acquire(ctx, n)
}

func (g *gate) leave(n int64) { g.mem.Release(n) }

const envCPU = "EDGEFAAS_INSPECT_CPU"

// limitCPU applies the CPU bound passed by the parent (RLIMIT_CPU: SIGXCPU,
// which Go ignores, at the soft limit, SIGKILL one second later).
func limitCPU() error {
	secs, err := strconv.ParseUint(os.Getenv(envCPU), 10, 64)
	if err != nil || secs == 0 {
		secs = DefaultCPUSeconds
	}
	return setRlimit(rlimitCPU, secs, secs+1)
}
