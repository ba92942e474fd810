// Package inspectproc validates uploaded modules in a child process whose
// memory, address space and CPU time are bounded, so that a hostile upload
// cannot exhaust the core's memory.
//
// A module of a few bytes can declare lengths (a data segment's size, a
// vector's count, a function's locals) that make a parser reserve or fill
// gigabytes; wazero does so (a 25-byte module made the core allocate
// 4 GiB). Bounding every nested length would need a second Wasm parser;
// running the validator in a child held to its memory share (its own
// memory cgroup, else a watchdog on its resident size; memory.go) and
// RLIMIT_AS turns any such input, or any parser crash, into a clean
// refusal instead.
package inspectproc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"

	"github.com/edgefaas/edgefaas/internal/wasm"
)

// DefaultLimit is the child's address-space bound before the code's own
// size is added.
const DefaultLimit uint64 = 2 << 30

// verdict is the child's answer on stdout.
type verdict struct {
	Info  wasm.ModuleInfo `json:"info"`
	Kind  string          `json:"kind,omitempty"` // not_wasm, compile, abi, other
	Error string          `json:"error,omitempty"`
}

// Inspector returns a validator with wasm.Inspect's contract that runs it
// in the child started by argv (a program whose entry point calls Serve),
// with env added to its environment.
// Default Bounds apply (see BoundedInspector).
func Inspector(argv, env []string) func(ctx context.Context, code []byte) (wasm.ModuleInfo, error) {
	return BoundedInspector(argv, env, Bounds{})
}

// BoundedInspector is Inspector with explicit CPU and concurrency bounds.
func BoundedInspector(argv, env []string, b Bounds) func(ctx context.Context, code []byte) (wasm.ModuleInfo, error) {
	b = b.withDefaults()
	g := newGate(b)
	return func(ctx context.Context, code []byte) (wasm.ModuleInfo, error) {
		limit := g.childBound(b.Memory, len(code))
		if err := g.enter(ctx, limit); err != nil {
			return wasm.ModuleInfo{}, err
		}
		defer g.leave(limit)
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", envCPU, b.CPUSeconds))
		cmd.Env = append(cmd.Env, fmt.Sprintf("EDGEFAAS_INSPECT_LIMIT=%d", DefaultLimit+8*uint64(len(code))))
		// The collector works to stay under the bound before the bound
		// kills the child.
		cmd.Env = append(cmd.Env, fmt.Sprintf("GOMEMLIMIT=%d", limit*3/4))
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return wasm.ModuleInfo{}, fmt.Errorf("inspect: stdin pipe: %w", err)
		}
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		if err := cmd.Start(); err != nil {
			return wasm.ModuleInfo{}, fmt.Errorf("inspect: start the validator child: %w", err)
		}
		// The child reads its code only once it is bound.
		bound := bind(cmd.Process.Pid, cmd.Process.Kill, limit)
		stdin.Write(code) // a child that died early is judged by its verdict
		stdin.Close()
		runErr := cmd.Wait()
		over, peak := bound.end()
		slog.Debug("inspect: child done", "code_bytes", len(code), "limit", limit, "peak", peak, "cgroup", bound.cg != nil, "over", over)
		if over {
			return wasm.ModuleInfo{}, fmt.Errorf("%w of %d MiB for a %d-byte upload (%d MiB plus %d× its size, at most the validators' %d MiB); the child was stopped at %d MiB",
				wasm.ErrValidationMemory, limit>>20, len(code), b.Memory>>20, codeFactor, g.total>>20, peak>>20)
		}
		var v verdict
		if err := json.Unmarshal(out.Bytes(), &v); err != nil {
			if ctx.Err() != nil {
				return wasm.ModuleInfo{}, ctx.Err()
			}
			// The child died: out of its address space or CPU time, or the
			// parser crashed.
			return wasm.ModuleInfo{}, fmt.Errorf("%w: validating it exceeded the validator's bounds (%v)", wasm.ErrCompile, runErr)
		}
		switch v.Kind {
		case "":
			return v.Info, nil
		case "not_wasm":
			return v.Info, fmt.Errorf("%w%s", wasm.ErrNotWasm, trimPrefix(v.Error, wasm.ErrNotWasm))
		case "compile":
			return v.Info, fmt.Errorf("%w%s", wasm.ErrCompile, trimPrefix(v.Error, wasm.ErrCompile))
		case "abi":
			return v.Info, fmt.Errorf("%w%s", wasm.ErrUnsupportedABI, trimPrefix(v.Error, wasm.ErrUnsupportedABI))
		}
		return v.Info, errors.New(v.Error)
	}
}

// trimPrefix drops the sentinel's own text, which the caller re-wraps.
func trimPrefix(msg string, sentinel error) string {
	if s, ok := bytes.CutPrefix([]byte(msg), []byte(sentinel.Error())); ok {
		return string(s)
	}
	return ": " + msg
}

// Serve is the child's side: it bounds its own address space, reads the
// code on stdin, validates it with wasm.Inspect and writes the verdict on
// stdout. It returns the process exit code.
func Serve() int {
	limit := DefaultLimit
	fmt.Sscan(os.Getenv("EDGEFAAS_INSPECT_LIMIT"), &limit)
	if err := setRlimit(rlimitAS, limit, limit); err != nil {
		fmt.Fprintln(os.Stderr, "inspect: bound address space:", err)
		return 1
	}
	if err := limitCPU(); err != nil {
		fmt.Fprintln(os.Stderr, "inspect: bound CPU time:", err)
		return 1
	}
	code, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "inspect: read code:", err)
		return 1
	}
	info, err := wasm.Inspect(context.Background(), code)
	v := verdict{Info: info}
	if err != nil {
		v.Error = err.Error()
		switch {
		case errors.Is(err, wasm.ErrNotWasm):
			v.Kind = "not_wasm"
		case errors.Is(err, wasm.ErrCompile):
			v.Kind = "compile"
		case errors.Is(err, wasm.ErrUnsupportedABI):
			v.Kind = "abi"
		default:
			v.Kind = "other"
		}
	}
	json.NewEncoder(os.Stdout).Encode(v)
	return 0
}
