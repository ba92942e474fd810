package wasm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/sys"
)

// Invocation is one call of a function.
type Invocation struct {
	Function     string   // "module/name", for errors, logs and outbound policy
	Input        []byte   // JSON arguments
	AllowedHosts []string // outbound HTTP grants of this function
}

// Result is a successful invocation's outcome.
type Result struct {
	Output   json.RawMessage // the function's JSON output ("null" if it wrote none)
	Logs     []string        // log lines (console_log, stderr), within the log limit
	Duration time.Duration   // time in the guest, queueing excluded
	Warm     bool            // served by a reused instance
}

// Invoke runs one invocation of m. It waits for a concurrency slot (or
// fails with ErrBusy), then runs the guest under m's limits. Errors wrap
// the package's sentinel errors or are a *FunctionError.
func (e *Engine) Invoke(ctx context.Context, m *Module, inv Invocation) (*Result, error) {
	res, err := e.invoke(ctx, m, inv)
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
	if err := e.admission.acquire(ctx); err != nil {
		return nil, err
	}
	defer e.admission.release()
	if !m.life.acquire() {
		return nil, ErrEvicted
	}
	defer m.life.release()
	e.stats.invocations.Add(1)

	st := &callState{
		function: inv.Function,
		input:    inv.Input,
		limits:   m.Limits,
		hosts:    inv.AllowedHosts,
		outbound: e.cfg.Outbound,
		cpu:      &cpuHold{slots: e.slots},
		prio:     &threadPrio{},
	}
	if err := st.cpu.take(ctx); err != nil { // before the timeout starts, like admission
		return nil, err
	}
	defer st.cpu.drop()
	callCtx, cancel := context.WithTimeout(withCall(ctx, st), m.Limits.Timeout)
	defer cancel()
	callCtx = experimental.WithTerminationCheckHook(callCtx, checkHook) // slots.go

	start := time.Now()
	var warm bool
	var err error
	guestThread(st.prio, func() { // long guests at a lower OS priority (nice_linux.go)
		switch m.Info.ABI {
		case ABIFunless:
			warm, err = e.callReactor(callCtx, m, st)
		case ABIWasi:
			err = e.runCommand(callCtx, m, st)
		default:
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

// callReactor runs __invoke on a warm instance, or a new one.
func (e *Engine) callReactor(ctx context.Context, m *Module, st *callState) (warm bool, err error) {
	in := m.pool.get()
	if in != nil {
		warm = true
		e.stats.instancesReused.Add(1)
	} else {
		stdio := &instanceWriter{st: st}
		cfg := moduleConfig().WithStdout(stdio).WithStderr(stdio).WithStartFunctions("_initialize")
		mod, err := m.rt.InstantiateModule(ctx, m.compiled, cfg)
		if err != nil {
			return false, err
		}
		e.stats.instancesCreated.Add(1)
		in = &instance{mod: mod, invoke: mod.ExportedFunction("__invoke"), stdio: stdio}
	}
	in.stdio.st = st
	results, err := in.invoke.Call(ctx, uint64(len(st.input)))
	in.stdio.st = nil
	in.calls++
	if err != nil || len(results) != 1 {
		st.memPages = in.mod.Memory().Size() / PageSize
		in.mod.Close(context.Background())
		if err == nil {
			err = fmt.Errorf("%w: __invoke returned %d values", ErrTrap, len(results))
		}
		return warm, err
	}
	if uint32(results[0]) != 0 && st.errMsg == nil {
		msg := "function failed without a message"
		st.errMsg = &msg
	}
	pages := in.mod.Memory().Size() / PageSize
	// Output that is not JSON fails the call: like any other failure, the
	// instance (whose memory may be corrupt) is not reused.
	if st.errMsg != nil || !st.validOutput() || in.calls >= e.cfg.RecycleAfterCalls || pages > e.cfg.RecycleAbovePages ||
		!m.pool.put(in, e.cfg.PoolIdle) {
		e.stats.instancesRecycled.Add(1)
		in.mod.Close(context.Background())
	}
	return warm, nil
}

// runCommand runs a WASI command in a fresh instance: args on stdin,
// result on stdout, stderr lines as logs.
func (e *Engine) runCommand(ctx context.Context, m *Module, st *callState) error {
	stdout := &limitedBuffer{max: st.limits.MaxOutputBytes}
	cfg := moduleConfig().
		WithStdin(bytes.NewReader(st.input)).
		WithStdout(stdout).
		WithStderr(st).
		WithStartFunctions("_start")
	e.stats.instancesCreated.Add(1)
	mod, err := m.rt.InstantiateModule(ctx, m.compiled, cfg)
	if mod != nil {
		defer mod.Close(context.Background())
	}
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
