package wasm

import (
	"fmt"
	"runtime"
	"time"
)

// PageSize is the size of one WebAssembly memory page.
const PageSize = 65536

// Limits bound one function's invocations. A zero field means "the
// engine's default"; a field above the engine's maximum is refused with
// ErrLimit instead of being silently lowered.
type Limits struct {
	MemoryPages    uint32        // linear memory limit, in 64 KiB pages
	Timeout        time.Duration // wall-clock time per invocation
	MaxInputBytes  int           // size of the JSON arguments
	MaxOutputBytes int           // size of the JSON result
	MaxLogBytes    int           // total log bytes kept per invocation, each line counted LogLineCost more
}

// Config configures an Engine. Zero fields take the documented defaults,
// chosen for a small edge machine.
type Config struct {
	// CacheDir keeps compiled code across restarts. Empty: memory only.
	// A damaged entry is deleted and the module compiled again.
	CacheDir string
	// CacheMaxBytes bounds the files in CacheDir: after each compile the
	// least recently used are deleted while they take more (default 0: a
	// tenth of the file system holding CacheDir; negative: unbounded).
	CacheMaxBytes int64
	// Defaults apply to functions that ask for nothing (defaults: 2048 pages =
	// 128 MiB, 60 s like FunLess, 6 MiB in, 6 MiB out, 64 KiB of logs).
	Defaults Limits
	// Maxima cap what a function may ask for (defaults: 16384 pages = 1 GiB,
	// 15 min, 64 MiB in and out, 1 MiB of logs).
	Maxima Limits
	// MaxConcurrent invocations run at once (default 64); MaxQueue more wait
	// (default 1024); beyond that Invoke fails fast with ErrBusy.
	MaxConcurrent int
	MaxQueue      int
	// MaxConcurrentPerOwner bounds the invocations of one owner (a tenant)
	// running at once (default: three quarters of MaxConcurrent, at least
	// 1; negative: MaxConcurrent), so that one tenant's burst of slow
	// calls leaves slots to the others; one owner may also hold at most
	// half of the queue's places and bytes. A freed slot goes to the
	// waiting owner with the fewest calls running.
	MaxConcurrentPerOwner int
	// MaxQueueBytes bounds the inputs of the invocations waiting, which
	// are held in memory (default: a quarter of MemoryBudget within
	// 8–64 MiB, 64 MiB without a budget); a call whose input alone is
	// larger waits only when nothing else does.
	MaxQueueBytes int64
	// MemoryBudget is the bytes the engine may commit to guests: the
	// reserved linear memory of running and idle instances plus compiled
	// code. A call reserves its instance's bound before it starts (see
	// docs/architecture.md, "Admission"); when the budget is spent it waits
	// in the queue above, then fails with ErrBusy. 0 means unbounded
	// (memory is still accounted, for Stats). A node computes it from its
	// own budget (internal/membudget).
	MemoryBudget int64
	// CodeBudget is the part of MemoryBudget compiled modules may hold
	// (default: half of it); the rest is for instances. Compiled modules
	// beyond it, or unused for CodeIdleTTL (default 10 min), are closed
	// least recently used first: the compile cache makes a recompile cheap.
	CodeBudget  int64
	CodeIdleTTL time.Duration
	// MaxCompiles bounds compilations running at once (default with a
	// MemoryBudget: 1 below 1 GiB, else 2, since compiling takes memory
	// too; unbounded without one).
	MaxCompiles int
	// PoolIdle is how many idle instances of one funless function (per
	// owner) are kept warm (default 2); idle instances are closed after
	// PoolIdleTTL (60 s), so an idle function's pool shrinks to zero.
	PoolIdle    int
	PoolIdleTTL time.Duration
	// RecycleAfterCalls closes a reused instance after this many calls
	// (default 10000); RecycleAbovePages closes it when its memory grew past
	// this many pages (default 0: a quarter of the function's own limit).
	RecycleAfterCalls int
	RecycleAbovePages uint32
	// CompilationWorkers compile one module in parallel (default: NumCPU).
	CompilationWorkers int
	// CompileChild is the command line of a child process that compiles a
	// module into CacheDir (a program whose entry point calls
	// ServeCompile: the node's own binary), used for every module compiled
	// from source when CacheDir is set, the compiler is not the
	// interpreter and MemoryBudget is 0 or at least 1 GiB (below it the
	// child's own runtime does not fit beside the node's: compile.go).
	// Empty: compile in process.
	CompileChild []string
	// Interpreter forces wazero's interpreter (slower, compiles fast). On
	// architectures without wazero's compiler it is used anyway.
	Interpreter bool
	// Outbound performs the guests' HTTP requests. Nil denies them all.
	Outbound Outbound
}

// DefaultLimits are the limits of a function that asks for nothing.
var DefaultLimits = Limits{
	MemoryPages:    2048,
	Timeout:        60 * time.Second,
	MaxInputBytes:  6 << 20,
	MaxOutputBytes: 6 << 20,
	MaxLogBytes:    64 << 10,
}

// DefaultMaxima are the most a function may ask for unless the operator says otherwise.
var DefaultMaxima = Limits{
	MemoryPages:    16384,
	Timeout:        15 * time.Minute,
	MaxInputBytes:  64 << 20,
	MaxOutputBytes: 64 << 20,
	MaxLogBytes:    1 << 20,
}

func (l Limits) orElse(d Limits) Limits {
	if l.MemoryPages == 0 {
		l.MemoryPages = d.MemoryPages
	}
	if l.Timeout == 0 {
		l.Timeout = d.Timeout
	}
	if l.MaxInputBytes == 0 {
		l.MaxInputBytes = d.MaxInputBytes
	}
	if l.MaxOutputBytes == 0 {
		l.MaxOutputBytes = d.MaxOutputBytes
	}
	if l.MaxLogBytes == 0 {
		l.MaxLogBytes = d.MaxLogBytes
	}
	return l
}

// within reports the first limit of l that exceeds max.
func (l Limits) within(max Limits) error {
	switch {
	case l.MemoryPages > max.MemoryPages:
		return fmt.Errorf("%w: memory %d pages > %d", ErrLimit, l.MemoryPages, max.MemoryPages)
	case l.Timeout > max.Timeout:
		return fmt.Errorf("%w: timeout %s > %s", ErrLimit, l.Timeout, max.Timeout)
	case l.MaxInputBytes > max.MaxInputBytes:
		return fmt.Errorf("%w: input %d bytes > %d", ErrLimit, l.MaxInputBytes, max.MaxInputBytes)
	case l.MaxOutputBytes > max.MaxOutputBytes:
		return fmt.Errorf("%w: output %d bytes > %d", ErrLimit, l.MaxOutputBytes, max.MaxOutputBytes)
	case l.MaxLogBytes > max.MaxLogBytes:
		return fmt.Errorf("%w: logs %d bytes > %d", ErrLimit, l.MaxLogBytes, max.MaxLogBytes)
	}
	return nil
}

func (c Config) withDefaults() Config {
	c.Maxima = c.Maxima.orElse(DefaultMaxima)
	// A default the operator did not set never exceeds the maximum they did set.
	c.Defaults = c.Defaults.orElse(Limits{
		MemoryPages:    min(DefaultLimits.MemoryPages, c.Maxima.MemoryPages),
		Timeout:        min(DefaultLimits.Timeout, c.Maxima.Timeout),
		MaxInputBytes:  min(DefaultLimits.MaxInputBytes, c.Maxima.MaxInputBytes),
		MaxOutputBytes: min(DefaultLimits.MaxOutputBytes, c.Maxima.MaxOutputBytes),
		MaxLogBytes:    min(DefaultLimits.MaxLogBytes, c.Maxima.MaxLogBytes),
	})
	if c.MaxConcurrent <= 0 {
		c.MaxConcurrent = 64
	}
	if c.MaxQueue < 0 {
		c.MaxQueue = 0
	} else if c.MaxQueue == 0 {
		c.MaxQueue = 1024
	}
	if c.MemoryBudget < 0 {
		c.MemoryBudget = 0
	}
	switch {
	case c.MaxConcurrentPerOwner < 0 || c.MaxConcurrentPerOwner > c.MaxConcurrent:
		c.MaxConcurrentPerOwner = c.MaxConcurrent
	case c.MaxConcurrentPerOwner == 0:
		c.MaxConcurrentPerOwner = max(c.MaxConcurrent-c.MaxConcurrent/4, 1)
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = 64 << 20
		if c.MemoryBudget > 0 {
			c.MaxQueueBytes = min(max(c.MemoryBudget/4, 8<<20), 64<<20)
		}
	}
	if c.MemoryBudget > 0 && (c.CodeBudget <= 0 || c.CodeBudget >= c.MemoryBudget) {
		c.CodeBudget = c.MemoryBudget / 2
	}
	if c.MemoryBudget == 0 {
		c.CodeBudget = 0
	}
	if c.CodeIdleTTL <= 0 {
		c.CodeIdleTTL = 10 * time.Minute
	}
	if c.MaxCompiles <= 0 {
		c.MaxCompiles = 1 << 20
		if c.MemoryBudget > 0 {
			c.MaxCompiles = 1 // a compile takes tens of MiB while it runs
			if c.MemoryBudget >= 1<<30 {
				c.MaxCompiles = 2
			}
		}
	}
	if c.PoolIdle <= 0 {
		c.PoolIdle = 2
	}
	if c.PoolIdleTTL <= 0 {
		c.PoolIdleTTL = time.Minute
	}
	if c.RecycleAfterCalls <= 0 {
		c.RecycleAfterCalls = 10000
	}
	if c.CompilationWorkers <= 0 {
		c.CompilationWorkers = runtime.NumCPU()
		if c.MemoryBudget > 0 && c.MemoryBudget < 1<<30 {
			// Parallel workers hold every compiled body and its relocations
			// apart until all are done: more heap where memory is short.
			c.CompilationWorkers = 1
		}
	}
	return c
}
