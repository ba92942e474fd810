package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/procfs"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/memcgroup"
	"github.com/edgefaas/edgefaas/internal/testing/workloadtargets"
)

// EdgeBudget is the "edge budget" section: what edgefaas needs of a small
// edge machine's memory, measured on fresh processes of this run.
type EdgeBudget struct {
	// Idle is each process's RSS once started and joined, before any
	// upload (IdleMiB), and after the hello functions were uploaded.
	Idle []IdleRSS `json:"idle"`
	// Peaks are the processes' peak RSS (VmHWM reset before each run)
	// under hello (Go and C) at 4 and 16 connections.
	Peaks []PeakRSS `json:"peaks"`
	// MemoryRun is the paper's memory run: hello, 4 threads continuously,
	// RSS sampled once a second, for MemoryRunFor.
	MemoryRun    []MemorySeries `json:"memory_run"`
	MemoryRunFor time.Duration  `json:"memory_run_ns"`
	// Trials are the cgroup limits tried for the single box running every
	// example workload; SmallestMiB the smallest that passed (0: none).
	Trials      []LimitTrial `json:"limit_trials"`
	SmallestMiB int          `json:"smallest_limit_mib"`
	// TrialFunctions are the examples each trial uploaded.
	TrialFunctions []string `json:"trial_functions"`
	// CgroupNote says why no limit was tried, when none could be.
	CgroupNote string `json:"cgroup_note,omitempty"`
	// GoMemory is what a Go function costs a worker, part by part.
	GoMemory *GoMemory `json:"go_memory,omitempty"`
	// JSMemory is what JavaScript functions cost a worker.
	JSMemory *JSMemory `json:"js_memory,omitempty"`
}

// IdleRSS is one process at rest.
type IdleRSS struct {
	Target      string  `json:"target"`
	Process     string  `json:"process"`
	FreshMiB    float64 `json:"fresh_mib"`
	UploadedMiB float64 `json:"after_upload_mib"`
}

// PeakRSS is one process's peak under one load.
type PeakRSS struct {
	Target   string  `json:"target"`
	Process  string  `json:"process"`
	Function string  `json:"function"`
	Conns    int     `json:"conns"`
	PeakMiB  float64 `json:"peak_mib"`
	Summary  Summary `json:"summary"`
}

// LimitTrial is the single box in one memory cgroup limit.
type LimitTrial struct {
	LimitMiB int     `json:"limit_mib"`
	OK       bool    `json:"ok"`
	OOMKills int64   `json:"oom_kills"`
	Requests int     `json:"requests"`
	Busy     int     `json:"busy"`         // answered 429 (allowed at 16 connections)
	Errors   int     `json:"errors"`       // anything else, uploads included
	PeakMiB  float64 `json:"peak_rss_mib"` // the single box's VmHWM (0: it was killed)
	Why      string  `json:"why,omitempty"`
}

// edgeSizes are the section's sizes (Options.Quick shrinks them).
type edgeSizes struct {
	peakFor   time.Duration // each peak run
	perTrial  int           // requests per connection of each trial workload
	lo, hi    int           // bisection bounds, MiB
	resolveTo int           // stop when hi-lo is at most this, MiB
	maxTrials int
	// settle is the pause before a memory reading (past the first reports
	// and GC cycles); conns are the peak runs' connections; goConns and
	// serial, the Go memory account's (serial: its calls on one instance).
	settle  time.Duration
	conns   []int
	goConns []int
	serial  int
	// trialFns are the functions each cgroup trial uploads and runs.
	trialFns []string
}

// trialFunctions are the seven examples a full cgroup trial uploads.
var trialFunctions = append(slices.Clone(functions), "hello-wasi-go")

// edgeSizes: the quick run (make test) takes each measurement once, at
// its smallest, to check that the section is produced; its figures mean
// nothing. Its cgroup trial uploads the Go and C hellos only: the five
// other Go compiles are most of a trial's time.
func (o Options) edgeSizes() edgeSizes {
	if o.Quick {
		return edgeSizes{peakFor: 300 * time.Millisecond, perTrial: 2, lo: 64, hi: 512, resolveTo: 128, maxTrials: 1,
			conns: []int{4}, goConns: []int{4}, serial: 20, trialFns: []string{"hello", "hello-c"}}
	}
	return edgeSizes{peakFor: 5 * time.Second, perTrial: 10, lo: 64, hi: 512, resolveTo: 16, maxTrials: 8,
		settle: 2 * time.Second, conns: []int{4, 16}, goConns: []int{4, 8}, serial: 2000, trialFns: trialFunctions}
}

// sectionEnv is the env of a section run alone (RunEdgeBudget,
// RunReplicatedCore): o with its defaults, o.OutDir made, a fresh data
// directory named after prefix; done stops what the env started and
// removes the directory.
func sectionEnv(o Options, prefix string) (e *env, done func(), err error) {
	o = o.withDefaults()
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, nil, err
	}
	dataDir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return nil, nil, err
	}
	e = &env{o: o, r: &Results{Machine: describeMachine(o.Root, o.Binary), opts: o}, byName: map[string]*target{}, code: map[string][]byte{}, dataDir: dataDir}
	return e, func() { e.close(); os.RemoveAll(dataDir) }, nil
}

// RunEdgeBudget runs only the edge-budget section and writes
// edge-budget.md and edge-budget.json into o.OutDir.
func RunEdgeBudget(ctx context.Context, o Options) (*EdgeBudget, error) {
	e, done, err := sectionEnv(o, "edgefaas-bench-edge-")
	if err != nil {
		return nil, err
	}
	defer done()
	o = e.o
	if e.echo, err = workloadtargets.StartEcho(); err != nil {
		return nil, err
	}
	if e.fetch, err = workloadtargets.StartFetch(); err != nil {
		return nil, err
	}
	if err := e.edgeBudget(ctx); err != nil {
		return nil, err
	}
	eb := e.r.EdgeBudget
	var b strings.Builder
	b.WriteString("# edgefaas edge budget\n\n")
	m := e.r.Machine
	fmt.Fprintf(&b, "Machine: %s, %d cores, %s, Linux %s, %s; commit `%.12s`.\n\n", m.CPU, m.Cores, m.MemTotal, m.Kernel, m.GoVersion, m.Commit)
	b.WriteString(eb.markdown())
	if err := os.WriteFile(filepath.Join(o.OutDir, "edge-budget.md"), []byte(b.String()), 0o644); err != nil {
		return eb, err
	}
	return eb, writeJSON(filepath.Join(o.OutDir, "edge-budget.json"), eb)
}

// edgeBudget measures the section on platforms of its own (fresh
// processes: the suite's others have served every workload already).
func (e *env) edgeBudget(ctx context.Context) error {
	sz := e.o.edgeSizes()
	if e.o.JSMemoryOnly {
		eb := &EdgeBudget{MemoryRunFor: e.o.EdgeMemoryFor}
		e.r.EdgeBudget = eb
		return e.jsMemory(ctx, eb, sz)
	}
	for _, f := range trialFunctions {
		if e.code[f] != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(e.o.WasmDir, f+".wasm"))
		if err != nil {
			return fmt.Errorf("read example (run `make examples` first): %w", err)
		}
		e.code[f] = b
	}
	eb := &EdgeBudget{MemoryRunFor: e.o.EdgeMemoryFor, TrialFunctions: sz.trialFns}
	e.r.EdgeBudget = eb
	if e.o.GoMemoryOnly {
		return e.goMemory(ctx, eb, sz)
	}
	dir := filepath.Join(e.dataDir, "edge")
	for _, shape := range []struct {
		name, host string
		workers    int
	}{{tEdgefaas, "127.0.0.1", 1}, {tSingleBox, "127.0.0.200", 0}} {
		pl, err := startPlatform(ctx, shape.name, e.o.Binary, filepath.Join(dir, shape.name), shape.host, shape.workers)
		if err != nil {
			return err
		}
		t := httpTarget(pl.name, pl.url, pl.guest, pl.pids)
		t.pl = pl
		names := procNames(t)
		time.Sleep(sz.settle) // past the first reports and GC cycles
		idle := make([]IdleRSS, len(names))
		for i, p := range pl.pids() {
			idle[i] = IdleRSS{Target: pl.name, Process: names[i], FreshMiB: mib(procRSS(p))}
		}
		for _, f := range []string{"hello", "hello-c"} {
			if err := pl.upload(ctx, fnName(f), e.code[f], nil); err != nil {
				pl.stop()
				return err
			}
		}
		for _, w := range []work{e.helloWork(), {"hello_c", []byte(`{"name":"edge"}`), contains("Hello, edge!")}} {
			c, cancel := context.WithTimeout(ctx, 60*time.Second)
			err := w.call(t)(c)
			cancel()
			if err != nil {
				pl.stop()
				return fmt.Errorf("%s on %s: %w", w.fn, pl.name, err)
			}
		}
		time.Sleep(sz.settle) // settling before a measurement, not a wait for a state
		for i, p := range pl.pids() {
			idle[i].UploadedMiB = mib(procRSS(p))
		}
		eb.Idle = append(eb.Idle, idle...)
		e.logf("edge budget   %-11s idle %s", pl.name, idleList(idle))
		for _, w := range []work{e.helloWork(), {"hello_c", []byte(`{"name":"edge"}`), contains("Hello, edge!")}} {
			for _, conns := range sz.conns {
				pids := pl.pids()
				for _, p := range pids {
					resetPeak(p)
				}
				r := runLoad(ctx, loadSpec{Threads: conns, Duration: sz.peakFor}, w.call(t), pl.pids)
				s := summarize(pl.name, w.fn, r, 0)
				for i, p := range pids {
					eb.Peaks = append(eb.Peaks, PeakRSS{Target: pl.name, Process: names[i], Function: w.fn, Conns: conns, PeakMiB: mib(peakRSS(p)), Summary: s})
				}
				e.logf("edge budget   %-11s %s at %d conns: %.0f req/s, %d errors, peak %s", pl.name, w.fn, conns, s.Throughput, s.Errors, peakOf(eb.Peaks[len(eb.Peaks)-len(pids):]))
			}
		}
		// The paper's memory run, on a process that has served the peaks.
		series := make([]MemorySeries, len(names))
		pids := pl.pids()
		for i, p := range pids {
			series[i] = MemorySeries{Target: pl.name, Process: names[i], IdleMiB: mib(procRSS(p))}
		}
		stop := sampleEverySecond(func(at time.Duration) {
			for i, p := range pids {
				series[i].sample(at, p)
			}
		})
		r := runLoad(ctx, loadSpec{Threads: 4, Duration: e.o.EdgeMemoryFor}, e.helloWork().call(t), pl.pids)
		stop()
		eb.MemoryRun = append(eb.MemoryRun, series...)
		s := summarize(pl.name, "hello (edge memory run)", r, 0)
		e.logf("edge budget   %-11s memory run %s: %.0f req/s, %d errors, peak %s", pl.name, e.o.EdgeMemoryFor, s.Throughput, s.Errors, peakList(series))
		pl.stop()
	}
	if err := e.goMemory(ctx, eb, sz); err != nil {
		return err
	}
	if err := e.jsMemory(ctx, eb, sz); err != nil {
		return err
	}
	return e.smallestLimit(ctx, eb, sz)
}

// smallestLimit bisects over cgroup limits for the smallest in which the
// single box uploads and runs every example workload at 4 and 16
// connections with no OOM kill and every request answered 200 (or 429 at
// 16 connections).
func (e *env) smallestLimit(ctx context.Context, eb *EdgeBudget, sz edgeSizes) error {
	probe, err := memcgroup.New(fmt.Sprintf("edgefaas-bench-probe-%d", os.Getpid()), 64<<20, memcgroup.BelowOwnOrRoot)
	if err != nil {
		eb.CgroupNote = err.Error()
		e.logf("edge budget   no cgroup limit tried: %v", err)
		return nil
	}
	probe.Remove()
	try := func(limit int) (bool, error) {
		tr, err := e.limitTrial(ctx, limit, sz)
		if err != nil {
			return false, err
		}
		eb.Trials = append(eb.Trials, tr)
		e.logf("edge budget   single box in %d MiB: ok=%v oom_kills=%d requests=%d busy=%d errors=%d peak %.0f MiB %s", limit, tr.OK, tr.OOMKills, tr.Requests, tr.Busy, tr.Errors, tr.PeakMiB, tr.Why)
		return tr.OK, nil
	}
	lo, hi := sz.lo, sz.hi
	ok, err := try(hi)
	if err != nil {
		return err
	}
	if !ok {
		if len(eb.Trials) >= sz.maxTrials {
			return nil
		}
		if ok, err = try(2 * hi); err != nil || !ok {
			return err // none of the tried limits: SmallestMiB stays 0
		}
		lo, hi = hi, 2*hi
	}
	for n := len(eb.Trials); hi-lo > sz.resolveTo && n < sz.maxTrials; n++ {
		mid := (lo + hi) / 2 / 8 * 8
		ok, err := try(mid)
		if err != nil {
			return err
		}
		if ok {
			hi = mid
		} else {
			lo = mid
		}
	}
	eb.SmallestMiB = hi
	return nil
}

// limitTrial runs the single box in a cgroup of limit MiB.
func (e *env) limitTrial(ctx context.Context, limit int, sz edgeSizes) (LimitTrial, error) {
	tr := LimitTrial{LimitMiB: limit}
	g, err := memcgroup.New(fmt.Sprintf("edgefaas-bench-%d-%d", os.Getpid(), limit), int64(limit)<<20, memcgroup.BelowOwnOrRoot)
	if err != nil {
		return tr, err
	}
	defer g.Remove()
	dir := filepath.Join(e.dataDir, "limit-"+strconv.Itoa(limit))
	pl, err := startPlatformWith(ctx, g.Wrap(), tSingleBox, e.o.Binary, dir, "127.0.0.201", 0)
	if err != nil {
		tr.Why = "did not start: " + firstLine(err.Error())
		tr.OOMKills, _ = g.OOMKills()
		return tr, nil
	}
	defer pl.kill()
	t := httpTarget(pl.name, pl.url, pl.guest, pl.pids)
	fail := func(why string) (LimitTrial, error) {
		tr.Why = why
		tr.Errors++
		tr.OOMKills, _ = g.OOMKills()
		tr.PeakMiB = mib(peakRSS(pl.core.pid()))
		return tr, nil
	}
	uploaded := map[string]bool{}
	for _, f := range sz.trialFns {
		if err := pl.upload(ctx, fnName(f), e.code[f], &client.Metadata{AllowedHosts: e.allowed(f)}); err != nil {
			return fail("upload: " + firstLine(err.Error()))
		}
		uploaded[fnName(f)] = true
	}
	works := append(e.checks(), work{"hello_wasi_go", []byte(`{"name":"edge"}`), contains("Hello, edge!")},
		work{"hello_c", []byte(`{"name":"edge"}`), contains("Hello, edge!")})
	works = slices.DeleteFunc(works, func(w work) bool { return !uploaded[w.fn] })
	for _, w := range works {
		for _, conns := range []int{4, 16} {
			var busy atomic.Int64
			call := w.call(t)
			fn := func(c context.Context) error {
				err := call(c)
				if conns > 4 && err != nil && errors.Is(err, errStatus) && strings.Contains(err.Error(), " 429:") {
					busy.Add(1)
					return nil
				}
				return err
			}
			r := runLoad(ctx, loadSpec{Threads: conns, PerThread: sz.perTrial, Timeout: 60 * time.Second}, fn, nil)
			tr.Requests += r.requests
			tr.Busy += int(busy.Load())
			tr.Errors += r.errors
			if r.errors > 0 {
				if tr.Why == "" {
					tr.Why = fmt.Sprintf("%s at %d conns: %s", w.fn, conns, firstLine(r.firstErr))
				}
				break // failed: the rest would only wait on a dead node
			}
		}
		if tr.Errors > 0 {
			break
		}
	}
	tr.OOMKills, _ = g.OOMKills()
	tr.PeakMiB = mib(peakRSS(pl.core.pid()))
	tr.OK = tr.OOMKills == 0 && tr.Errors == 0
	return tr, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// resetPeak resets a process's VmHWM (clear_refs 5).
func resetPeak(pid int) {
	os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0)
}

// peakRSS is a process's VmHWM, bytes (0 if gone).
func peakRSS(pid int) int64 {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return 0
	}
	st, err := p.NewStatus()
	if err != nil {
		return 0
	}
	return int64(st.VmHWM)
}

func idleList(is []IdleRSS) string {
	var parts []string
	for _, i := range is {
		parts = append(parts, fmt.Sprintf("%s %.1f MiB (%.1f after upload)", i.Process, i.FreshMiB, i.UploadedMiB))
	}
	return strings.Join(parts, ", ")
}

func peakOf(ps []PeakRSS) string {
	var parts []string
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%s %.1f MiB", p.Process, p.PeakMiB))
	}
	return strings.Join(parts, ", ")
}

// trialWhat names the examples the cgroup trials uploaded.
func (eb *EdgeBudget) trialWhat() string {
	if len(eb.TrialFunctions) == len(trialFunctions) {
		return "the seven examples"
	}
	return strings.Join(eb.TrialFunctions, " and ") + " only (quick)"
}

// markdown renders the section.
func (eb *EdgeBudget) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("## Edge budget\n\n")
	w("What edgefaas needs of a small edge machine's memory (a Raspberry Pi 3B+ has ~700 MB above its OS), measured on fresh processes. RSS from /proc (VmRSS; peaks are VmHWM, reset before each run).\n\n")
	w("| target | process | idle RSS, fresh | idle, hello + hello-c uploaded |\n| --- | --- | --- | --- |\n")
	for _, i := range eb.Idle {
		w("| %s | %s | %.1f MiB | %.1f MiB |\n", i.Target, i.Process, i.FreshMiB, i.UploadedMiB)
	}
	w("\n| target | process | function | connections | peak RSS | req/s | errors |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	for _, p := range eb.Peaks {
		w("| %s | %s | %s | %d | %.1f MiB | %s | %d |\n", p.Target, p.Process, p.Function, p.Conns, p.PeakMiB, rps(p.Summary.Throughput), p.Summary.Errors)
	}
	w("\nThe paper's memory run (hello, 4 threads continuously, RSS sampled each second) for %s:\n\n", eb.MemoryRunFor)
	w("| target | process | at start | min | max | at end |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, s := range eb.MemoryRun {
		if len(s.RSSMiB) == 0 {
			continue
		}
		w("| %s | %s | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB |\n", s.Target, s.Process, s.IdleMiB, slices.Min(s.RSSMiB), slices.Max(s.RSSMiB), s.RSSMiB[len(s.RSSMiB)-1])
	}
	if eb.GoMemory != nil {
		w("\n%s", eb.GoMemory.markdown())
	}
	if eb.JSMemory != nil {
		w("\n%s", eb.JSMemory.markdown())
	}
	w("\nSmallest memory cgroup limit in which the single box (`core --with-worker`) uploads %s and runs every workload at 4 and 16 connections with no OOM kill and every request answered (200, or 429 beyond the queue at 16 connections): ", eb.trialWhat())
	switch {
	case eb.CgroupNote != "":
		w("not measured (%s).\n\n", eb.CgroupNote)
	case eb.SmallestMiB == 0:
		w("**none of the limits tried**.\n\n")
	default:
		w("**%d MiB** (bisection; resolution as below).\n\n", eb.SmallestMiB)
	}
	if len(eb.Trials) > 0 {
		w("| limit | passed | OOM kills | requests | 429 | errors | peak RSS | first problem |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
		for _, t := range eb.Trials {
			peak := "killed"
			if t.PeakMiB > 0 {
				peak = fmt.Sprintf("%.0f MiB", t.PeakMiB)
			}
			w("| %d MiB | %v | %d | %d | %d | %d | %s | %s |\n", t.LimitMiB, t.OK, t.OOMKills, t.Requests, t.Busy, t.Errors, peak, strings.ReplaceAll(t.Why, "|", "\\|"))
		}
		w("\n")
	}
	return b.String()
}
