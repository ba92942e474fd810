package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"syscall"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
)

// A module is compiled from source in a short-lived child process of the
// node's own binary (Config.CompileChild) when the engine keeps a disk
// cache: the child compiles it into the cache and exits, and the engine
// then loads the entry as it would after a restart, running the machine
// code from a file-backed mapping (patches/README.md). The compiler's
// working set (tens of MiB for a Go guest, several times its machine
// code) is then the child's and goes back to the OS with it, instead of
// raising the worker's heap, and its GC goal, for the rest of its life.
// The child's memory still counts in the worker's cgroup while it runs:
// the compile's reservation from the code budget stays as it was.

// Environment of the compile child: its cache directory, compile workers
// and memory limit in pages (the runtime's, which decoding checks).
const (
	envCompileDir     = "EDGEFAAS_COMPILE_DIR"
	envCompileWorkers = "EDGEFAAS_COMPILE_WORKERS"
	envCompilePages   = "EDGEFAAS_COMPILE_PAGES"
)

// errChildKilled is a compile child ended by a signal: the kernel's OOM
// killer, most likely, which compiling in the engine's own process would
// have met too.
var errChildKilled = errors.New("the compile child was killed")

// compileInChild compiles code into the engine's disk cache in a child
// process and records the child's peak resident size.
func (e *Engine) compileInChild(ctx context.Context, code []byte, pages uint32) error {
	argv := e.cfg.CompileChild
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(),
		envCompileDir+"="+e.cfg.CacheDir,
		envCompileWorkers+"="+strconv.Itoa(e.cfg.CompilationWorkers),
		envCompilePages+"="+strconv.FormatUint(uint64(pages), 10))
	if limit, ok := childMemoryLimit(); ok {
		cmd.Env = append(cmd.Env, "GOMEMLIMIT="+strconv.FormatInt(limit, 10))
	}
	cmd.Stdin = bytes.NewReader(code)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	err := cmd.Run()
	if st := cmd.ProcessState; st != nil {
		e.stats.childPeak.raise(peakRSS(st))
	}
	switch {
	case err == nil:
		e.stats.childCompiles.Add(1)
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("waiting for the compile child: %w", ctx.Err())
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Errorf("%w (%v)", errChildKilled, ws.Signal())
		}
		return fmt.Errorf("compile child: %v: %s", err, bytes.TrimSpace(errOut.Bytes()))
	}
	return fmt.Errorf("start the compile child: %w", err)
}

// minChildLimit is the least Go memory limit a compile child is given:
// below it the collector would run without pause and the compile crawl.
const minChildLimit = 16 << 20

// childMemoryLimit is the Go memory limit of a compile child: what this
// process's own limit (the node's share of its budget) leaves beside the
// memory this process's runtime holds now, since both count in the same
// cgroup while the child runs. False when this process has no limit.
func childMemoryLimit() (int64, bool) {
	limit := debug.SetMemoryLimit(-1)
	if limit == math.MaxInt64 {
		return 0, false
	}
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	held := int64(s[0].Value.Uint64() - s[1].Value.Uint64())
	return max(limit-held, minChildLimit), true
}

// ServeCompile is the compile child's side (Config.CompileChild): it reads
// a module on stdin, compiles it into the disk cache named by its
// environment with the engine's own runtime configuration (the cache key
// covers it, so the engine finds the entry), and returns the process exit
// code: 0 once the entry is written, 1 with the error on stderr.
func ServeCompile() int {
	dir := os.Getenv(envCompileDir)
	workers, _ := strconv.Atoi(os.Getenv(envCompileWorkers))
	pages, err := strconv.ParseUint(os.Getenv(envCompilePages), 10, 32)
	if dir == "" || err != nil {
		fmt.Fprintf(os.Stderr, "compile: %s and %s must be set\n", envCompileDir, envCompilePages)
		return 1
	}
	code, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compile: read the module:", err)
		return 1
	}
	if err := compileIntoCache(context.Background(), dir, max(workers, 1), uint32(pages), code); err != nil {
		fmt.Fprintln(os.Stderr, "compile:", err)
		return 1
	}
	return 0
}

// compileIntoCache compiles code with a guest runtime's configuration into
// the disk cache in dir.
func compileIntoCache(ctx context.Context, dir string, workers int, pages uint32, code []byte) error {
	cache, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		return fmt.Errorf("compile cache %s: %w", dir, err)
	}
	defer cache.Close(ctx)
	r := wazero.NewRuntimeWithConfig(ctx, guestRuntimeConfig(false).WithMemoryLimitPages(pages).WithCompilationCache(cache))
	defer r.Close(ctx)
	cm, err := compileModule(experimental.WithCompilationWorkers(ctx, workers), r, code)
	if err != nil {
		return err
	}
	return cm.Close(ctx)
}
