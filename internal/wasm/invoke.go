package wasm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
)

// Invocation is one call of a function.
type Invocation struct {
	Function     string   // "module/name", for errors, logs and outbound policy
	Input        []byte   // JSON arguments
	AllowedHosts []string // outbound HTTP grants of this function
	// Owner is the subject (tenant) the function belongs to. Warm
	// instances are pooled per owner: two tenants who upload identical
	// code never share an instance (and so never each other's memory).
	Owner string
}

// Result is a successful invocation's outcome.
type Result struct {
	Output   json.RawMessage // the function's JSON output ("null" if it wrote none)
	Logs     []string        // log lines (console_log, stderr), within the log limit
	Duration time.Duration   // time in the guest, queueing excluded
	Warm     bool            // served by a reused instance
}

// Invoke runs one invocation of m. It waits for a concurrency slot and
// for its instance's memory from the budget (or fails with ErrBusy when
// the queue is full), then runs the guest under m's limits. Errors wrap
// the package's sentinel errors or are a *FunctionError.
func (e *Engine) Invoke(ctx context.Context, m *Module, inv Invocation) (*Result, error) {
	res, err := e.invoke(ctx, m, inv)
	var again rerun
	if errors.As(err, &again) && ctx.Err() == nil {
		e.stats.reruns.Add(1)
		res, err = e.invoke(ctx, m, inv)
	}
	if errors.As(err, &again) {
		err = again.error
	}
	if err != nil {
		e.stats.failures.Add(1)
		var fe *FunctionError
		if errors.As(err, &fe) {
			return res, err
		}
		return res, fmt.Errorf("invoke %s: %w", inv.Function, err)
	}
	return res, nil
}

func (e *Engine) invoke(ctx context.Context, m *Module, inv Invocation) (*Result, error) {
	if len(inv.Input) > m.Limits.MaxInputBytes {
		return nil, fmt.Errorf("%w: %d bytes > %d", ErrInputTooLarge, len(inv.Input), m.Limits.MaxInputBytes)
	}
	if len(inv.Input) == 0 {
		inv.Input = []byte("{}")
	}
	if err := e.admission.acquire(ctx, inv.Owner, int64(len(inv.Input))); err != nil {
		return nil, err
	}
	defer e.admission.release(inv.Owner)
	if !m.life.acquire() {
		return nil, ErrEvicted
	}
	defer m.life.release()

	st := &callState{
		function: inv.Function,
		input:    inv.Input,
		limits:   m.Limits,
		hosts:    inv.AllowedHosts,
		outbound: e.cfg.Outbound,
		cpu:      &cpuHold{slots: e.slots},
		prio:     &threadPrio{},
	}
	if m.Info.ABI == ABIJS {
		st.input = jsRunFrame(m.script, inv.Input)
	}
	var p *pool
	var in *instance
	if m.Info.ABI == ABIFunless || m.Info.ABI == ABIJS {
		p = m.life.pool(inv.Owner)
		defer p.done()
		in = e.warm(p, m)
	}
	var acct *account
	if in == nil {
		// Admission by memory: a new instance reserves its bound first
		// (or, while it waits, takes a warm one returned meanwhile).
		var alt *alternative
		if p != nil {
			alt = &alternative{wake: e.returned.wait, take: func() bool { in = e.warm(p, m); return in != nil }}
		}
		var err error
		if acct, err = e.reserveInstance(ctx, inv.Owner, m, alt, e.admission.queue(inv.Owner, int64(len(inv.Input)))); err != nil && !errors.Is(err, errAlternative) {
			return nil, err
		}
	}
	// The CPU slot is taken only once the memory is there: a call waiting
	// for memory must not hold a slot that the guest holding the memory
	// needs to finish (it gives its slot up in host calls and takes it
	// again), or the two wait for each other.
	if err := st.cpu.take(ctx); err != nil { // before the timeout starts, like admission
		if in != nil {
			if !p.put(in, e.cfg.PoolIdle) {
				in.close(context.Background())
			}
		} else if acct != nil {
			acct.close()
			e.stats.live.Add(-1)
		}
		return nil, err
	}
	defer st.cpu.idle()
	callCtx, cancel := context.WithTimeout(withCall(ctx, st), m.Limits.Timeout)
	defer cancel()
	st.done = callCtx.Done()
	callCtx = experimental.WithTerminationCheckHook(callCtx, checkHook) // slots.go
	e.stats.invocations.Add(1)

	start := time.Now()
	var warm bool
	var err error
	guestThread(st.prio, func() { // long guests at a lower OS priority (nice_linux.go)
		switch m.Info.ABI {
		case ABIFunless, ABIJS:
			warm, err = e.callReactor(callCtx, m, p, in, acct, st)
		case ABIWasi:
			err = e.runCommand(callCtx, m, acct, st)
		default:
			if acct != nil {
				acct.close()
				e.stats.live.Add(-1)
			}
			err = fmt.Errorf("%w: %q", ErrUnsupportedABI, m.Info.ABI)
		}
	})
	res := &Result{Logs: st.flushLogs(), Duration: time.Since(start), Warm: warm}
	if err != nil {
		return res, e.classify(ctx, callCtx, m, st, err)
	}
	if st.errMsg != nil {
		return res, &FunctionError{Message: *st.errMsg}
	}
	out := bytes.TrimSpace(st.output)
	if len(out) == 0 {
		out = []byte("null")
	} else if !st.validOutput() {
		return res, fmt.Errorf("%w: %q", ErrInvalidOutput, preview(out))
	}
	res.Output = json.RawMessage(out)
	e.log.Debug("invoked", "function", inv.Function, "hash", m.Hash[:12], "warm", warm, "took", res.Duration)
	return res, nil
}

// reserveInstance admits a new instance of m against the instance budget:
// it reserves m's bound (see bound), closing idle instances of any
// function first if they hold the memory, else waiting in the queue.
func (e *Engine) reserveInstance(ctx context.Context, owner string, m *Module, alt *alternative, queue func() (bool, func())) (*account, error) {
	n := e.instMem.fit(e.bound(m))
	err := e.instMem.reserve(ctx, owner, n, e.reclaimIdle, queue, alt)
	if err != nil {
		if errors.Is(err, ErrBusy) {
			return nil, fmt.Errorf("%w (memory budget of %d MiB spent)", ErrBusy, e.cfg.MemoryBudget>>20)
		}
		return nil, err
	}
	e.stats.live.Add(1)
	return &account{b: e.instMem, owner: owner, reserved: n, reclaim: e.reclaimIdle}, nil
}

// bound is what a new instance of m reserves: the most memory an instance
// of m has ended a call with, plus a quarter, in whole MiB; before any
// call has been measured, the memory the module declares it starts with,
// plus a quarter, in whole MiB. Never more than m's memory limit. An
// instance may grow past its bound if the budget has room at that moment
// (see account.grow); if not, its call is run once more with the raised
// bound, through the queue.
//
// The first call of a new function does not reserve its limit: the
// limit (128 MiB by default) is usually most of a small node's guests'
// share, so one tenant's first call of a function that then runs for
// its whole timeout would hold the node's memory alone and every other
// tenant's calls would wait behind it.
func (e *Engine) bound(m *Module) int64 {
	limit := int64(m.Limits.MemoryPages) * PageSize
	peak := m.life.peak.Load()
	if peak == 0 {
		peak = int64(m.Info.MinMemoryPages) * PageSize
	}
	return min(limit, roundUp(peak+peak/4, growStep))
}

// instantiate makes an instance of m whose memory is off the Go heap and
// within acct.
func (e *Engine) instantiate(ctx context.Context, m *Module, acct *account, cfg wazero.ModuleConfig, image *dataImage) (*instance, error) {
	alloc := &allocator{acct: acct, committed: &e.stats.linear, image: image}
	in := &instance{acct: acct, engine: e}
	mod, err := m.rt.InstantiateModule(experimental.WithMemoryAllocator(ctx, alloc), m.compiled, cfg)
	in.mod, in.mem = mod, alloc.mem
	e.stats.instancesCreated.Add(1)
	return in, err
}

// warm takes an idle instance of m from p, its account topped up to m's
// bound (see account.topUp), or nil: the pool is empty, or the budget has
// no room for the top-up, and the instance was closed.
func (e *Engine) warm(p *pool, m *Module) *instance {
	in := p.get()
	if in == nil || in.mem == nil || in.acct.topUp(e.bound(m)) {
		return in
	}
	e.stats.instancesRecycled.Add(1)
	in.close(context.Background())
	return nil
}

// recordPeak remembers how much memory an instance of m ended a call with.
func (m *Module) recordPeak(in *instance) {
	if in.mem != nil {
		m.notePeak(int64(len(in.mem.buf)))
	}
}

// notePeak raises the most memory an instance of m is known to need to n.
func (m *Module) notePeak(n int64) {
	for {
		p := m.life.peak.Load()
		if n <= p || m.life.peak.CompareAndSwap(p, n) {
			return
		}
	}
}

// recycleAbove is the memory, in pages, past which a warm instance is not
// reused: Config.RecycleAbovePages, else a quarter of the function's limit.
func (e *Engine) recycleAbove(m *Module) uint32 {
	if e.cfg.RecycleAbovePages > 0 {
		return e.cfg.RecycleAbovePages
	}
	return max(m.Limits.MemoryPages/4, 1)
}

// callReactor runs __invoke on a warm instance (in), or a new one within acct.
func (e *Engine) callReactor(ctx context.Context, m *Module, p *pool, in *instance, acct *account, st *callState) (warm bool, err error) {
	if in != nil {
		warm = true
		e.stats.instancesReused.Add(1)
	} else {
		stdio := &instanceWriter{st: st}
		cfg := e.moduleConfig(func() *callState { return stdio.st }).WithStdout(stdio).WithStderr(stdio).WithStartFunctions("_initialize")
		image := m.life.image
		var tpl *jsTemplate
		if m.js != nil {
			image = m.js.image
			if tpl = m.life.template.Load(); tpl != nil {
				// The template holds what the start function did.
				image, cfg = tpl.image, cfg.WithStartFunctions()
			}
		}
		in, err = e.instantiate(ctx, m, acct, cfg, image)
		if err != nil {
			in.close(context.Background())
			return false, e.budgetError(m, st, acct, err)
		}
		in.stdio = stdio
		in.invoke = in.mod.ExportedFunction("__invoke")
		if m.js != nil {
			in.stdio.st = st
			ok, err := e.startJS(ctx, m, in, tpl, st)
			in.stdio.st = nil
			if err != nil || !ok {
				st.memPages = in.mod.Memory().Size() / PageSize
				in.close(context.Background())
				return false, e.budgetError(m, st, acct, err)
			}
		}
	}
	in.stdio.st = st
	results, err := in.invoke.Call(ctx, uint64(len(st.input)))
	in.stdio.st = nil
	in.calls++
	if err != nil || len(results) != 1 {
		st.memPages = in.mod.Memory().Size() / PageSize
		in.close(context.Background())
		if err == nil {
			err = fmt.Errorf("%w: __invoke returned %d values", ErrTrap, len(results))
		}
		return warm, e.budgetError(m, st, in.acct, err)
	}
	if uint32(results[0]) != 0 && st.errMsg == nil {
		msg := "function failed without a message"
		st.errMsg = &msg
	}
	m.recordPeak(in)
	pages := in.mod.Memory().Size() / PageSize
	// Output that is not JSON fails the call: like any other failure, the
	// instance (whose memory may be corrupt) is not reused.
	if st.errMsg != nil || !st.validOutput() || in.calls >= e.cfg.RecycleAfterCalls || pages > e.recycleAbove(m) {
		e.stats.instancesRecycled.Add(1)
		in.close(context.Background())
		return warm, nil
	}
	if in.mem != nil { // a module may have no memory at all
		// It keeps its bound while idle: its next call may grow that far,
		// and the memory is reclaimed from the pool when another call needs it.
		in.acct.trim(max(int64(len(in.mem.buf)), e.bound(m)))
	} else {
		in.acct.trim(0)
	}
	if !p.put(in, e.cfg.PoolIdle) {
		e.stats.instancesRecycled.Add(1)
		in.close(context.Background())
		return warm, nil
	}
	// Calls waiting for memory: one of the same function takes this
	// instance; the others reclaim idle instances as they wait.
	if e.instMem.waiting() {
		e.returned.fire()
	}
	return warm, nil
}

// budgetError turns a failure that followed a refused memory.grow into
// ErrBusy (the node's budget was spent; a retry may succeed) or, when even
// an idle engine could not have granted it, ErrMemoryLimit. A refusal
// raises m's bound to what the guest asked for, so that its next instance
// is admitted with enough; and a call that had done nothing outside the
// worker may run again (see rerun).
func (e *Engine) budgetError(m *Module, st *callState, acct *account, err error) error {
	if acct == nil {
		return err
	}
	denied, never, wanted := acct.outcome()
	if !denied {
		return err
	}
	m.notePeak(wanted)
	detail := "memory.grow refused"
	if err != nil {
		detail = firstLine(err)
	}
	if never {
		return &abort{fmt.Errorf("%w: more than the worker's memory budget (%d MiB): %s", ErrMemoryLimit, e.instMem.limit>>20, detail)}
	}
	busy := fmt.Errorf("%w (memory budget spent while the function grew): %s", ErrBusy, detail)
	if !st.effects {
		return &abort{rerun{busy}}
	}
	return &abort{busy}
}

// rerun marks a call that may run again at once: its guest was refused
// memory by the node's budget (not by its own limit) before it had made
// any outbound request, so running it again repeats nothing outside the
// worker. Its second instance is admitted with the memory the first asked
// for, waiting in the queue like any new instance.
type rerun struct{ error }

func (r rerun) Unwrap() error { return r.error }

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// runCommand runs a WASI command in a fresh instance: args on stdin,
// result on stdout, stderr lines as logs.
func (e *Engine) runCommand(ctx context.Context, m *Module, acct *account, st *callState) (err error) {
	stdout := &limitedBuffer{max: st.limits.MaxOutputBytes}
	cfg := e.moduleConfig(func() *callState { return st }).
		WithStdin(bytes.NewReader(st.input)).
		WithStdout(stdout).
		WithStderr(st).
		WithStartFunctions("_start")
	in, err := e.instantiate(ctx, m, acct, cfg, m.life.image)
	defer func() {
		if err == nil {
			m.recordPeak(in)
		}
		in.close(context.Background())
		err = e.budgetError(m, st, acct, err)
	}()
	if stdout.overflow {
		return fmt.Errorf("%w: more than %d bytes on stdout", ErrOutputTooLarge, st.limits.MaxOutputBytes)
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) && exit.ExitCode() != sys.ExitCodeDeadlineExceeded && exit.ExitCode() != sys.ExitCodeContextCanceled {
		if msg := st.lastLines(5); msg != "" {
			if isOutOfMemory(msg) {
				return fmt.Errorf("%w: %s", ErrMemoryLimit, msg)
			}
			st.errMsg = &msg
		} else {
			msg := fmt.Sprintf("exited with code %d", exit.ExitCode())
			st.errMsg = &msg
		}
		return nil
	}
	if err != nil {
		return err
	}
	st.output = stdout.buf.Bytes()
	return nil
}

// classify turns a guest's failure into one of the package's errors with
// the detail a person needs.
func (e *Engine) classify(parent, callCtx context.Context, m *Module, st *callState, err error) error {
	var ab *abort
	if errors.As(err, &ab) {
		return ab.err
	}
	if errors.Is(err, ErrBusy) || errors.Is(err, ErrOutputTooLarge) || errors.Is(err, ErrUnsupportedABI) || errors.Is(err, ErrEvicted) {
		return err
	}
	if parent.Err() != nil {
		return fmt.Errorf("invocation canceled: %w", parent.Err())
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(callCtx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w after %s", ErrTimeout, m.Limits.Timeout)
	}
	logs := strings.Join(st.flushLogs(), "\n")
	first, _, _ := strings.Cut(err.Error(), "\n")
	nearLimit := st.memPages > 0 && st.memPages >= m.Limits.MemoryPages-m.Limits.MemoryPages/8
	if isOutOfMemory(logs) || isOutOfMemory(first) || nearLimit {
		return fmt.Errorf("%w (%d pages = %d MiB): %s", ErrMemoryLimit, m.Limits.MemoryPages, m.Limits.MemoryPages/16, first)
	}
	var exit *sys.ExitError
	if errors.As(err, &exit) {
		if tail := st.lastLines(3); tail != "" {
			return fmt.Errorf("%w: exited with code %d: %s", ErrTrap, exit.ExitCode(), tail)
		}
		return fmt.Errorf("%w: exited with code %d", ErrTrap, exit.ExitCode())
	}
	return fmt.Errorf("%w: %s", ErrTrap, strings.TrimPrefix(first, "wasm error: "))
}

func isOutOfMemory(s string) bool {
	return strings.Contains(s, "out of memory") || strings.Contains(s, "cannot allocate")
}

func preview(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "..."
	}
	return string(b)
}
