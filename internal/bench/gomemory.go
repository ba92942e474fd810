package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
)

// GoMemory is the edge-budget section's account of what a Go function
// costs a worker: a core and one worker as separate processes, the worker
// holding Go functions only. Each phase reads the worker's
// /proc/PID/smaps_rollup (anonymous and file-backed resident memory), its
// Go heap and the engine's own counters (its /metrics).
type GoMemory struct {
	WasmBytes int             `json:"wasm_bytes"` // hello.wasm
	Phases    []GoMemoryPhase `json:"phases"`
	// CompiledOnDisk is the compile cache's size on disk after hello was
	// compiled: its machine code (and metadata), bytes.
	CompiledOnDisk int64 `json:"compiled_on_disk_bytes"`
	// MemoryRun is the paper's memory run on this worker with hello alone:
	// 4 connections for MemoryRunFor, RSS each second.
	MemoryRun    MemorySeries  `json:"memory_run"`
	MemoryRunFor time.Duration `json:"memory_run_ns"`
	MemoryRunRPS float64       `json:"memory_run_rps"`
	// MemoryRunMaxPssMiB is the memory run's largest proportional set
	// size: pages mapped more than once (an instance's shared data image)
	// counted once, as the kernel holds them.
	MemoryRunMaxPssMiB float64 `json:"memory_run_max_pss_mib"`
	// SixGo is the worker's peak RSS (VmHWM reset first) while the six Go
	// examples, all deployed, are each invoked at 4 connections in turn.
	SixGoPeakMiB float64 `json:"six_go_peak_mib"`
	SixGoErrors  int     `json:"six_go_errors"`
	// Rest is the pause before each phase's reading; SerialCalls the calls
	// made on one instance, PeakConns the most connections of a phase.
	Rest        time.Duration `json:"rest_ns"`
	SerialCalls int           `json:"serial_calls"`
	PeakConns   int           `json:"peak_conns"`
}

// GoMemoryPhase is the worker at one point of the run.
type GoMemoryPhase struct {
	Phase string `json:"phase"`
	// From smaps_rollup: resident, of it anonymous, and file-backed (Rss
	// minus Anonymous).
	RSS, Anon, File int64
	// Pss is the proportional set size: a page mapped at several places
	// (each instance's copy-on-write data image) counts once, where Rss
	// counts it at each.
	Pss int64
	// The worker's Go heap: in use, and held but not returned to the OS
	// (idle minus released).
	HeapInuse, HeapHeld int64
	// The engine's counters: instances alive, the linear memory they
	// committed, compiled code counted against the code budget.
	Instances     int64
	LinearMemory  int64
	CodeBytes     int64
	InstancesMade int64
	// ChildCompilePeak is the largest peak resident size of a compile
	// child so far (0: the worker compiled in process): memory the node
	// held while it compiled, outside the worker's RSS.
	ChildCompilePeak int64
}

// goExamples are the six Go examples (five SDK reactors, one command).
var goExamples = []string{"hello", "sleep", "matrixmult", "server-reply", "network", "hello-wasi-go"}

// goMemory measures GoMemory on a platform of its own.
func (e *env) goMemory(ctx context.Context, eb *EdgeBudget, sz edgeSizes) error {
	port, err := testcluster.FreePort("127.0.0.2")
	if err != nil {
		return err
	}
	metricsAddr := "127.0.0.2:" + port
	pl, err := startPlatformArgs(ctx, nil, "go-memory", e.o.Binary, filepath.Join(e.dataDir, "go-memory"), "127.0.0.1", 1, nil,
		append([]string{"--metrics-addr", metricsAddr, "--public-metrics"}, e.o.GoMemoryWorkerArgs...))
	if err != nil {
		return err
	}
	defer pl.stop()
	w := pl.workers[0]
	t := httpTarget(pl.name, pl.url, pl.guest, pl.pids)
	gm := &GoMemory{WasmBytes: len(e.code["hello"]), MemoryRunFor: e.o.EdgeMemoryFor,
		Rest: sz.settle, SerialCalls: sz.serial, PeakConns: slices.Max(sz.goConns)}
	eb.GoMemory = gm
	phase := func(name string) error {
		time.Sleep(sz.settle) // settling before a measurement, not a wait for a state
		p, err := readPhase(ctx, name, w.pid(), "http://"+metricsAddr+"/metrics")
		if err != nil {
			return fmt.Errorf("go memory, %s: %w", name, err)
		}
		gm.Phases = append(gm.Phases, p)
		e.heapProfile(w, "go-memory", name)
		e.logf("edge budget   go memory %-28s rss %.1f pss %.1f anon %.1f file %.1f heap %.1f held %.1f linear %.1f MiB, %d instances", name,
			mib(p.RSS), mib(p.Pss), mib(p.Anon), mib(p.File), mib(p.HeapInuse), mib(p.HeapHeld), mib(p.LinearMemory), p.Instances)
		return nil
	}
	if err := phase("fresh"); err != nil {
		return err
	}
	if err := pl.upload(ctx, "hello", e.code["hello"], nil); err != nil {
		return err
	}
	if err := phase("hello uploaded"); err != nil {
		return err
	}
	gm.CompiledOnDisk = dirSize(filepath.Join(w.dataDir, "compiled"))
	hello := e.helloWork().call(t)
	if err := hello(ctx); err != nil {
		return fmt.Errorf("go memory, first call: %w", err)
	}
	if err := phase("1 instance, 1 call"); err != nil {
		return err
	}
	if r := runLoad(ctx, loadSpec{Threads: 1, PerThread: sz.serial}, hello, nil); r.errors > 0 {
		return fmt.Errorf("go memory, %d calls: %s", sz.serial, r.firstErr)
	}
	if err := phase(gm.serialPhase()); err != nil {
		return err
	}
	for _, conns := range sz.goConns {
		if r := runLoad(ctx, loadSpec{Threads: conns, Duration: sz.peakFor}, hello, nil); r.errors > 0 {
			return fmt.Errorf("go memory, %d conns: %s", conns, r.firstErr)
		}
		if err := phase(connsPhase(conns)); err != nil {
			return err
		}
	}

	// The memory run, hello alone.
	gm.MemoryRun = MemorySeries{Target: pl.name, Process: "worker1", IdleMiB: mib(procRSS(w.pid()))}
	stop := sampleEverySecond(func(at time.Duration) {
		gm.MemoryRun.sample(at, w.pid())
		if roll, err := smapsRollup(w.pid()); err == nil {
			gm.MemoryRunMaxPssMiB = max(gm.MemoryRunMaxPssMiB, mib(roll["Pss"]))
		}
	})
	r := runLoad(ctx, loadSpec{Threads: 4, Duration: e.o.EdgeMemoryFor}, hello, pl.pids)
	stop()
	s := summarize(pl.name, "hello (go memory run)", r, 0)
	gm.MemoryRunRPS = s.Throughput
	e.logf("edge budget   go memory run %s: %.0f req/s, %d errors, worker max %.1f MiB (PSS %.1f MiB)", e.o.EdgeMemoryFor, s.Throughput, s.Errors, slices.Max(gm.MemoryRun.RSSMiB), gm.MemoryRunMaxPssMiB)
	if err := phase("after the memory run"); err != nil {
		return err
	}

	// All six Go examples deployed, each at 4 connections in turn: five
	// Go compiles from source, left out of the quick suite (make test),
	// which checks that the account is made and reported.
	if e.o.Quick {
		return nil
	}
	for _, f := range goExamples[1:] {
		if err := pl.upload(ctx, fnName(f), e.code[f], &client.Metadata{AllowedHosts: e.allowed(f)}); err != nil {
			return err
		}
	}
	resetPeak(w.pid())
	works := append(e.checks(), work{"hello_wasi_go", []byte(`{"name":"edge"}`), contains("Hello, edge!")})
	for _, wk := range works {
		r := runLoad(ctx, loadSpec{Threads: 4, PerThread: sz.perTrial, Timeout: 60 * time.Second}, wk.call(t), nil)
		gm.SixGoErrors += r.errors
	}
	gm.SixGoPeakMiB = mib(peakRSS(w.pid()))
	e.logf("edge budget   go memory six Go examples at 4 conns: worker peak %.1f MiB, %d errors", gm.SixGoPeakMiB, gm.SixGoErrors)
	return phase("six Go examples deployed")
}

// readPhase reads one process's memory and its engine's counters.
func readPhase(ctx context.Context, name string, pid int, metricsURL string) (GoMemoryPhase, error) {
	p := GoMemoryPhase{Phase: name}
	roll, err := smapsRollup(pid)
	if err != nil {
		return p, err
	}
	p.RSS, p.Anon = roll["Rss"], roll["Anonymous"]
	p.File = p.RSS - p.Anon
	p.Pss = roll["Pss"]
	m, err := scrape(ctx, metricsURL)
	if err != nil {
		return p, err
	}
	p.HeapInuse = int64(m["go_memstats_heap_inuse_bytes"])
	p.HeapHeld = int64(m["go_memstats_heap_idle_bytes"] - m["go_memstats_heap_released_bytes"])
	p.Instances = int64(m["edgefaas_worker_instances_live"])
	p.LinearMemory = int64(m["edgefaas_worker_linear_memory_bytes"])
	p.CodeBytes = int64(m["edgefaas_worker_code_bytes"])
	p.InstancesMade = int64(m["edgefaas_worker_instances_created_total"])
	p.ChildCompilePeak = int64(m["edgefaas_worker_compile_child_peak_bytes"])
	return p, nil
}

// smapsRollup reads /proc/PID/smaps_rollup's sizes, bytes by field.
func smapsRollup(pid int) (map[string]int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		fs := strings.Fields(v)
		if !ok || len(fs) != 2 || fs[1] != "kB" {
			continue
		}
		n, _ := strconv.ParseInt(fs[0], 10, 64)
		out[k] = n << 10
	}
	return out, sc.Err()
}

// scrape reads the unlabelled samples of a Prometheus text endpoint.
func scrape(ctx context.Context, url string) (map[string]float64, error) {
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(c, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") {
			continue
		}
		k, v, ok := strings.Cut(l, " ")
		if !ok || strings.Contains(k, "{") {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
			out[k] = f
		}
	}
	return out, sc.Err()
}

// dirSize is the total size of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// markdown renders the breakdown.
func (gm *GoMemory) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("### What a Go function costs a worker\n\n")
	w("A core and one worker as separate processes; the worker holds the Go hello (%.1f MB of wasm) alone, later the six Go examples. Resident memory from /proc/PID/smaps_rollup (file-backed = Rss − Anonymous), the worker's Go heap (in use; held = idle but not returned to the OS) and the engine's counters from its /metrics. Each phase after %s of rest.\n\n", float64(gm.WasmBytes)/1e6, gm.Rest)
	w("| phase | RSS | PSS | anonymous | file-backed | Go heap in use | Go heap held | linear memory committed | instances live (made) | code counted |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, p := range gm.Phases {
		w("| %s | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %.1f MiB | %d (%d) | %.1f MiB |\n", p.Phase, mib(p.RSS), mib(p.Pss), mib(p.Anon), mib(p.File), mib(p.HeapInuse), mib(p.HeapHeld), mib(p.LinearMemory), p.Instances, p.InstancesMade, mib(p.CodeBytes))
	}
	w("\nThe compile cache on disk after hello: %.1f MiB (machine code and its metadata).\n\n", mib(gm.CompiledOnDisk))
	if n := len(gm.Phases); n > 0 && gm.Phases[n-1].ChildCompilePeak > 0 {
		w("The worker compiled in a child process; the largest child's peak RSS: %.1f MiB (in the node's cgroup while it ran, not in the worker's RSS).\n\n", mib(gm.Phases[n-1].ChildCompilePeak))
	}
	if d, ok := gm.perModule(); ok {
		w("Per Go module (hello uploaded − fresh): RSS +%.1f MiB, of it anonymous +%.1f MiB, file-backed +%.1f MiB; Go heap in use +%.1f MiB.\n\n", mib(d.RSS), mib(d.Anon), mib(d.File), mib(d.HeapInuse))
	}
	if per, lin, ok := gm.perInstance(); ok {
		w("Per additional warm Go instance (after %d connections against 1 instance after %d calls): RSS +%.2f MiB, PSS +%.2f MiB, anonymous +%.2f MiB, linear memory committed +%.2f MiB.\n\n", gm.PeakConns, gm.SerialCalls, mib(per.RSS), mib(per.Pss), mib(per.Anon), mib(lin))
	}
	gm.goals(w)
	if len(gm.MemoryRun.RSSMiB) > 0 {
		w("The memory run with hello alone (4 connections, %s): worker max %.1f MiB (PSS %.1f MiB), %.0f req/s.",
			gm.MemoryRunFor, slices.Max(gm.MemoryRun.RSSMiB), gm.MemoryRunMaxPssMiB, gm.MemoryRunRPS)
		if gm.SixGoPeakMiB > 0 {
			w(" The six Go examples deployed, each invoked at 4 connections in turn: worker peak %.1f MiB, %d errors.", gm.SixGoPeakMiB, gm.SixGoErrors)
		}
		w("\n\n")
	}
	return b.String()
}

// serialPhase and connsPhase name the phases perInstance compares.
func (gm *GoMemory) serialPhase() string { return fmt.Sprintf("1 instance, %d calls", gm.SerialCalls) }
func connsPhase(conns int) string        { return fmt.Sprintf("after %d connections", conns) }

func (gm *GoMemory) phase(name string) (GoMemoryPhase, bool) {
	for _, p := range gm.Phases {
		if p.Phase == name {
			return p, true
		}
	}
	return GoMemoryPhase{}, false
}

// perModule is what uploading (and compiling) hello added.
func (gm *GoMemory) perModule() (GoMemoryPhase, bool) {
	a, ok1 := gm.phase("fresh")
	b, ok2 := gm.phase("hello uploaded")
	if !ok1 || !ok2 {
		return GoMemoryPhase{}, false
	}
	return GoMemoryPhase{RSS: b.RSS - a.RSS, Anon: b.Anon - a.Anon, File: b.File - a.File, HeapInuse: b.HeapInuse - a.HeapInuse}, true
}

// perInstance is the memory (RSS, PSS, anonymous) and linear memory each
// warm instance beyond the first added.
func (gm *GoMemory) perInstance() (mem GoMemoryPhase, linear int64, ok bool) {
	a, ok1 := gm.phase(gm.serialPhase())
	b, ok2 := gm.phase(connsPhase(gm.PeakConns))
	if !ok1 || !ok2 || b.Instances <= a.Instances {
		return GoMemoryPhase{}, 0, false
	}
	n := b.Instances - a.Instances
	mem = GoMemoryPhase{RSS: (b.RSS - a.RSS) / n, Pss: (b.Pss - a.Pss) / n, Anon: (b.Anon - a.Anon) / n}
	return mem, (b.LinearMemory - a.LinearMemory) / n, true
}

// heapProfile saves the process's heap profile (in use, after a GC) as
// OutDir/profiles/ACCOUNT-heap-PHASE.pprof, for `go tool pprof`.
func (e *env) heapProfile(p *proc, account, phase string) {
	if p.pprof == "" {
		return
	}
	dir := filepath.Join(e.o.OutDir, "profiles")
	if os.MkdirAll(dir, 0o755) != nil {
		return
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get("http://" + p.pprof + "/debug/pprof/heap?gc=1")
	if err != nil {
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return
	}
	os.WriteFile(filepath.Join(dir, account+"-heap-"+strings.ReplaceAll(strings.ReplaceAll(phase, " ", "-"), ",", "")+".pprof"), b, 0o644)
}

// goals renders the figures a Go function's cost is held to, beside
// FunLess's published one where it has one.
func (gm *GoMemory) goals(w func(string, ...any)) {
	up, ok := gm.phase("hello uploaded")
	if !ok {
		return
	}
	w("| figure | this run | goal | FunLess (published) |\n| --- | ---: | ---: | ---: |\n")
	if len(gm.MemoryRun.RSSMiB) > 0 {
		// FunLess's worker running a hello on a Raspberry Pi 3B+: ~438 MB
		// RSS, ~300 MB of it the OS.
		w("| worker max in the memory run, Go hello alone: RSS (PSS) | %.1f (%.1f) MiB | ≤ 48 MiB | ~138 MB above the OS (its worker, a hello) |\n",
			slices.Max(gm.MemoryRun.RSSMiB), gm.MemoryRunMaxPssMiB)
	}
	w("| worker after uploading the Go hello, idle: RSS (PSS) | %.1f (%.1f) MiB | ≤ 32 MiB | – |\n", mib(up.RSS), mib(up.Pss))
	if per, _, ok := gm.perInstance(); ok {
		w("| each additional warm Go instance: RSS (PSS) | %.2f (%.2f) MiB | ≤ 3 MiB | – |\n", mib(per.RSS), mib(per.Pss))
	}
	if gm.SixGoPeakMiB > 0 {
		w("| six Go examples deployed, each at 4 connections in turn: peak RSS | %.1f MiB | ≤ 64 MiB | – |\n", gm.SixGoPeakMiB)
	}
	w("\n")
}
