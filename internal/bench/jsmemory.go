package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/edgefaas/edgefaas/internal/jsengine"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
)

// JSMemory is the edge-budget section's account of JavaScript functions
// on a worker: a core and one worker as separate processes, the worker
// holding hellojs alone for the paper's memory run (FunLess's memory
// figure is a JS hello), then 100 distinct JS functions.
type JSMemory struct {
	Phases []GoMemoryPhase `json:"phases"`
	// FirstCallMS is hellojs's first call after its upload returned (the
	// upload waits for the worker to compile it), median of FirstCalls.
	FirstCallMS float64 `json:"first_call_ms"`
	FirstCalls  int     `json:"first_calls"`
	// MemoryRun is the paper's memory run with hellojs alone: 4
	// connections for MemoryRunFor, RSS each second.
	MemoryRun    MemorySeries  `json:"memory_run"`
	MemoryRunFor time.Duration `json:"memory_run_ns"`
	MemoryRunRPS float64       `json:"memory_run_rps"`
	// Hundred is the worker's RSS once 100 distinct JS functions are
	// deployed and each invoked once.
	HundredMiB    float64 `json:"hundred_functions_mib"`
	HundredErrors int     `json:"hundred_functions_errors"`
}

// jsHundred is how many distinct JS functions the last phase deploys.
const jsHundred = 100

// jsMemory measures JSMemory on a platform of its own; without the engine
// it notes why and measures nothing.
func (e *env) jsMemory(ctx context.Context, eb *EdgeBudget, sz edgeSizes) error {
	src, err := os.ReadFile(filepath.Join(e.o.Root, "examples", "hellojs", "hello.js"))
	if err != nil || !jsengine.Available() {
		e.logf("edge budget   no JavaScript account: %v", errorsJoin(err, jsengineMissing()))
		return nil
	}
	port, err := testcluster.FreePort("127.0.0.2")
	if err != nil {
		return err
	}
	metricsAddr := "127.0.0.2:" + port
	pl, err := startPlatformArgs(ctx, nil, "js-memory", e.o.Binary, filepath.Join(e.dataDir, "js-memory"), "127.0.0.1", 1, nil,
		[]string{"--metrics-addr", metricsAddr, "--public-metrics"})
	if err != nil {
		return err
	}
	defer pl.stop()
	w := pl.workers[0]
	t := httpTarget(pl.name, pl.url, pl.guest, pl.pids)
	jm := &JSMemory{MemoryRunFor: e.o.EdgeMemoryFor}
	eb.JSMemory = jm
	phase := func(name string) error {
		time.Sleep(sz.settle) // settling before a measurement, not a wait for a state
		p, err := readPhase(ctx, name, w.pid(), "http://"+metricsAddr+"/metrics")
		if err != nil {
			return fmt.Errorf("js memory, %s: %w", name, err)
		}
		jm.Phases = append(jm.Phases, p)
		e.heapProfile(w, "js-memory", name)
		e.logf("edge budget   js memory %-28s rss %.1f anon %.1f heap %.1f linear %.1f MiB, %d instances", name,
			mib(p.RSS), mib(p.Anon), mib(p.HeapInuse), mib(p.LinearMemory), p.Instances)
		return nil
	}
	if err := phase("fresh"); err != nil {
		return err
	}
	hello := work{"hellojs", []byte(`{"name":"edge"}`), contains("Hello, edge!")}
	// First calls after an upload: each a new version (a comment), so a
	// new instance of a script the worker compiled for it.
	var firsts []float64
	for i := range 5 {
		code := jsengine.Wrap(fmt.Appendf(append([]byte(nil), src...), "\n// %d\n", i))
		if err := pl.upload(ctx, "hellojs", code, nil); err != nil {
			return err
		}
		start := time.Now()
		if err := hello.call(t)(ctx); err != nil {
			return fmt.Errorf("js memory, first call: %w", err)
		}
		firsts = append(firsts, float64(time.Since(start).Microseconds())/1000)
	}
	slices.Sort(firsts)
	jm.FirstCallMS, jm.FirstCalls = firsts[len(firsts)/2], len(firsts)
	if err := phase("hellojs, 1 instance"); err != nil {
		return err
	}
	call := hello.call(t)
	calls := 2000
	if e.o.Quick {
		calls = 200
	}
	if r := runLoad(ctx, loadSpec{Threads: 1, PerThread: calls}, call, nil); r.errors > 0 {
		return fmt.Errorf("js memory, %d calls: %s", calls, r.firstErr)
	}
	if err := phase("1 instance, 2000 calls"); err != nil { // 200 in the quick suite
		return err
	}
	if r := runLoad(ctx, loadSpec{Threads: 8, Duration: sz.peakFor}, call, nil); r.errors > 0 {
		return fmt.Errorf("js memory, 8 conns: %s", r.firstErr)
	}
	if err := phase("after 8 connections"); err != nil {
		return err
	}

	jm.MemoryRun = MemorySeries{Target: pl.name, Process: "worker1", IdleMiB: mib(procRSS(w.pid()))}
	stop := sampleEverySecond(func(at time.Duration) { jm.MemoryRun.sample(at, w.pid()) })
	r := runLoad(ctx, loadSpec{Threads: 4, Duration: e.o.EdgeMemoryFor}, call, pl.pids)
	stop()
	s := summarize(pl.name, "hellojs (js memory run)", r, 0)
	jm.MemoryRunRPS = s.Throughput
	e.logf("edge budget   js memory run %s: %.0f req/s, %d errors, worker max %.1f MiB", e.o.EdgeMemoryFor, s.Throughput, s.Errors, slices.Max(jm.MemoryRun.RSSMiB))

	// hellojs and n-1 more: a subject's default quota is 100 functions.
	n := jsHundred
	if e.o.Quick {
		n = 3
	}
	for i := range n - 1 {
		name := fmt.Sprintf("js_%03d", i)
		code := jsengine.Wrap(fmt.Appendf(append([]byte(nil), src...), "\n// %s\n", name))
		if err := pl.upload(ctx, name, code, nil); err != nil {
			return err
		}
		if err := (work{name, hello.args, hello.check}).call(t)(ctx); err != nil {
			jm.HundredErrors++
		}
	}
	if err := phase(fmt.Sprintf("%d JS functions deployed, each called", n)); err != nil {
		return err
	}
	jm.HundredMiB = mib(jm.Phases[len(jm.Phases)-1].RSS)
	return nil
}

// errorsJoin joins the non-nil errors' texts.
func errorsJoin(errs ...error) string {
	var s []string
	for _, err := range errs {
		if err != nil {
			s = append(s, err.Error())
		}
	}
	return strings.Join(s, "; ")
}

// markdown renders the account.
func (jm *JSMemory) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("### JavaScript functions on a worker\n\n")
	w("A core and one worker as separate processes; the worker holds hellojs (`examples/hellojs`, FunLess's memory figure's function) alone, later %d distinct JS functions. Columns as in the Go account.\n\n", jsHundred)
	w("| phase | RSS | anonymous | Go heap in use | linear memory committed | instances live (made) | code counted |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, p := range jm.Phases {
		w("| %s | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %d (%d) | %.1f MiB |\n", p.Phase, mib(p.RSS), mib(p.Anon), mib(p.HeapInuse), mib(p.LinearMemory), p.Instances, p.InstancesMade, mib(p.CodeBytes))
	}
	w("\nhellojs's first call after its upload: %.1f ms (median of %d uploads).", jm.FirstCallMS, jm.FirstCalls)
	if a, b, ok := jm.perInstance(); ok {
		w(" Per additional warm JS instance (after 8 connections against 1 instance): linear memory committed +%.2f MiB (RSS moves with the Go heap's collections more than with instances).", mib(b.LinearMemory-a.LinearMemory)/float64(b.Instances-a.Instances))
	}
	if len(jm.MemoryRun.RSSMiB) > 0 {
		w(" The memory run with hellojs alone (4 connections, %s): worker max %.1f MiB, %.0f req/s.", jm.MemoryRunFor, slices.Max(jm.MemoryRun.RSSMiB), jm.MemoryRunRPS)
	}
	if jm.HundredMiB > 0 {
		w(" The last phase's functions each called once: worker %.1f MiB, %d errors.", jm.HundredMiB, jm.HundredErrors)
	}
	w("\n\n")
	return b.String()
}

// perInstance returns the phases the per-instance cost is taken between.
func (jm *JSMemory) perInstance() (a, b GoMemoryPhase, ok bool) {
	for _, p := range jm.Phases {
		switch p.Phase {
		case "1 instance, 2000 calls":
			a = p
		case "after 8 connections":
			b = p
		}
	}
	return a, b, a.Phase != "" && b.Phase != "" && b.Instances > a.Instances
}
