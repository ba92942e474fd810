package inspectproc

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"

	"github.com/edgefaas/edgefaas/internal/wasm"
)

// Bounds limit what upload validation may cost the core besides memory:
// the CPU time of each child and how many run at once. Validation is
// reachable by any token holder, so neither may be unbounded.
type Bounds struct {
	// CPUSeconds is each child's RLIMIT_CPU (default DefaultCPUSeconds):
	// a module that makes the validator spin is killed, and refused.
	CPUSeconds uint64
	// Concurrent children at most (default: the number of CPUs, ≥ 2).
	Concurrent int
	// Queue is how many more validations may wait for a slot (default
	// 4×Concurrent); beyond that a validation fails at once with an error
	// wrapping wasm.ErrBusy (the API answers 503 with Retry-After).
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

// gate admits at most Concurrent validations, with Queue waiting.
type gate struct {
	slots   chan struct{}
	waiting chan struct{}
}

func newGate(b Bounds) *gate {
	return &gate{slots: make(chan struct{}, b.Concurrent), waiting: make(chan struct{}, b.Concurrent+b.Queue)}
}

// enter takes a slot, waiting (within ctx) only if the queue has room.
func (g *gate) enter(ctx context.Context) error {
	select {
	case g.waiting <- struct{}{}:
	default:
		return fmt.Errorf("%w: upload validation is at its limit of %d at once and %d waiting; retry shortly",
			wasm.ErrBusy, cap(g.slots), cap(g.waiting)-cap(g.slots))
	}
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		<-g.waiting
		return ctx.Err()
	}
}

func (g *gate) leave() {
	<-g.slots
	<-g.waiting
}

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
