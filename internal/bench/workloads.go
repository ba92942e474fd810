package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/edgefaas/edgefaas/internal/wasm"
)

// perTarget runs the same load on every target, one after another, and
// records a summary per target.
func (e *env) perTarget(ctx context.Context, name string, w work, spec loadSpec, subtract time.Duration) {
	for _, t := range e.targets {
		r := runLoad(ctx, spec, w.call(t), t.pids)
		s := summarize(t.name, name, r, subtract)
		e.r.Workloads = append(e.r.Workloads, s)
		e.logf("%-13s %-11s n=%d err=%d p50=%.0fµs p99=%.0fµs %.0f req/s", name, t.name, s.Requests, s.Errors, s.P50, s.P99, s.Throughput)
	}
}

func (e *env) sleep(ctx context.Context) error {
	sl := time.Duration(e.o.SleepMS) * time.Millisecond
	e.perTarget(ctx, "sleep", e.sleepWork(e.o.SleepMS), loadSpec{Threads: e.o.Threads, PerThread: e.o.SleepPer, Timeout: sl + 30*time.Second}, sl)
	return nil
}

func (e *env) serverReply(ctx context.Context) error {
	e.perTarget(ctx, "server-reply", e.replyWork(), loadSpec{Threads: e.o.Threads, PerThread: e.o.ReplyPer}, 0)
	return nil
}

func (e *env) matrix(ctx context.Context) error {
	e.perTarget(ctx, "matrixmult", e.matrixWork(), loadSpec{Threads: e.o.Threads, PerThread: e.o.MatrixPer}, 0)
	return nil
}

func (e *env) network(ctx context.Context) error {
	before := e.fetch.Count()
	e.perTarget(ctx, "network", e.networkWork(), loadSpec{Threads: 1, PerThread: e.o.NetworkN}, 0)
	e.r.Notes = append(e.r.Notes, fmt.Sprintf("network: the loopback HTTP server answered %d outbound requests (%d invocations × 16 × %d targets expected).",
		e.fetch.Count()-before, e.o.NetworkN, len(e.targets)))
	return nil
}

// throughput raises hello's concurrency until p99 exceeds the bound.
func (e *env) throughput(ctx context.Context) error {
	w := e.helloWork()
	for _, t := range e.targets {
		tr := ThroughputRun{Target: t.name}
		for c := 1; c <= e.o.MaxConcurrency; c *= 2 {
			r := runLoad(ctx, loadSpec{Threads: c, Duration: e.o.ThroughputStep}, w.call(t), t.pids)
			s := summarize(t.name, fmt.Sprintf("throughput c=%d", c), r, 0)
			tr.Steps = append(tr.Steps, s)
			e.logf("throughput    %-11s c=%-3d %.0f req/s p99=%.0fµs cpu/req=%.1fµs err=%d", t.name, c, s.Throughput, s.P99, s.CPUPerReq, s.Errors)
			within := s.P99 <= us(e.o.ThroughputP99) && s.Errors == 0
			if within && s.Throughput > tr.Peak {
				tr.Peak, tr.PeakAt, tr.PeakCPU, tr.PeakP99 = s.Throughput, c, s.CPUPerReq, s.P99
			}
			if !within {
				tr.StoppedWhy = fmt.Sprintf("c=%d: p99 %.1f ms > %s or errors (%d)", c, s.P99/1000, e.o.ThroughputP99, s.Errors)
				break
			}
		}
		if tr.StoppedWhy == "" {
			tr.StoppedWhy = fmt.Sprintf("reached the highest step (c=%d)", e.o.MaxConcurrency)
		}
		if tr.Peak == 0 {
			// No step stayed within the bound (a loaded machine): report the
			// best step anyway, and say so.
			for _, s := range tr.Steps {
				if s.Throughput > tr.Peak {
					tr.Peak, tr.PeakAt, tr.PeakCPU, tr.PeakP99 = s.Throughput, s.Concurrency, s.CPUPerReq, s.P99
				}
			}
			tr.StoppedWhy += "; no step within the bound: peak is the best step"
		}
		e.r.Throughput = append(e.r.Throughput, tr)
	}
	return nil
}

// procNames labels a target's processes for the RSS series.
func procNames(t *target) []string {
	switch {
	case t.pl != nil && len(t.pl.workers) == 0:
		return []string{"core+worker"}
	case t.pl != nil:
		n := []string{"core"}
		for i := range t.pl.workers {
			n = append(n, fmt.Sprintf("worker%d", i+1))
		}
		return n
	default:
		return []string{"server"}
	}
}

// memory runs hello with 4 threads for MemoryFor and samples RSS once a second.
func (e *env) memory(ctx context.Context) error {
	w := e.helloWork()
	for _, t := range e.targets {
		if t.name == tInProc {
			continue // its RSS is the bench process's (client included)
		}
		pids := t.pids()
		names := procNames(t)
		series := make([]MemorySeries, len(pids))
		for i, p := range pids {
			series[i] = MemorySeries{Target: t.name, Process: names[i], IdleMiB: mib(procRSS(p))}
		}
		sample := func(at time.Duration) {
			for i, p := range pids {
				series[i].sample(at, p)
			}
		}
		start := time.Now()
		stop := sampleEverySecond(sample)
		r := runLoad(ctx, loadSpec{Threads: e.o.Threads, Duration: e.o.MemoryFor}, w.call(t), t.pids)
		stop()
		sample(time.Since(start)) // one more at the end of the load
		s := summarize(t.name, "hello (memory run)", r, 0)
		e.r.Workloads = append(e.r.Workloads, s)
		e.r.Memory = append(e.r.Memory, series...)
		e.logf("memory        %-11s n=%d err=%d %.0f req/s peak RSS %s", t.name, s.Requests, s.Errors, s.Throughput, peakList(series))
	}
	return nil
}

func peakList(ss []MemorySeries) string {
	var parts []string
	for _, s := range ss {
		parts = append(parts, fmt.Sprintf("%s %.1f MiB", s.Process, slices.Max(append([]float64{0}, s.RSSMiB...))))
	}
	return strings.Join(parts, ", ")
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// coldStart times upload → first invoke on the cluster, then the first
// invoke after its workers restart (compile cache on disk), for a Go and
// a C function and, where the engine is built, the JavaScript hellojs; and
// compile → first invoke in process, the floor.
func (e *env) coldStart(ctx context.Context) error {
	t := e.byName[tEdgefaas]
	pl := t.pl
	fns := []struct{ label, example, args, want string }{
		{"go (hello.wasm)", "hello", `{"name":"cold"}`, "Hello, cold!"},
		{"c (hello-c.wasm)", "hello-c", `{"name":"cold"}`, "Hello, cold!"},
	}
	if _, ok := e.code["hellojs"]; ok {
		fns = append(fns, struct{ label, example, args, want string }{"js (hellojs, hello.js)", "hellojs", `{"name":"cold"}`, "Hello, cold!"})
	}
	names := make([]string, len(fns))
	for i, f := range fns {
		code := mark(e.code[f.example]) // a new hash: nothing cached anywhere
		names[i] = fmt.Sprintf("cold_%s_%d", strings.ReplaceAll(f.example, "-", "_"), time.Now().UnixNano()%1e6)
		w := work{names[i], []byte(f.args), contains(f.want)}
		cs := ColdStart{Target: tEdgefaas, Function: f.label, Case: "upload"}
		t0 := time.Now()
		err := pl.upload(ctx, names[i], code, nil)
		cs.PrepMS = ms(time.Since(t0))
		if err == nil {
			cs.FirstMS, cs.WarmMS, err = firstAndWarm(ctx, w, t)
		}
		cs.TotalMS = cs.PrepMS + cs.FirstMS
		if err != nil {
			cs.Err = err.Error()
		}
		e.r.ColdStarts = append(e.r.ColdStarts, cs)
		e.logf("cold start    %s upload %s: upload %.1f ms + first invoke %.1f ms (warm %.2f ms) %s", tEdgefaas, f.label, cs.PrepMS, cs.FirstMS, cs.WarmMS, cs.Err)

		// The floor: compile in process and invoke.
		ip := ColdStart{Target: tInProc, Function: f.label, Case: "compile (no cache)"}
		t0 = time.Now()
		err = e.inproc.add(ctx, names[i], mark(e.code[f.example]), nil)
		ip.PrepMS = ms(time.Since(t0))
		if err == nil {
			ip.FirstMS, ip.WarmMS, err = firstAndWarm(ctx, w, e.byName[tInProc])
		}
		ip.TotalMS = ip.PrepMS + ip.FirstMS
		if err != nil {
			ip.Err = err.Error()
		}
		e.r.ColdStarts = append(e.r.ColdStarts, ip)
	}

	// Restart every worker of the cluster (same data directory: the
	// compiled code is on disk) and time the first invoke of each.
	restart := time.Now()
	for _, w := range pl.workers {
		w.stop()
	}
	for _, w := range pl.workers {
		if err := w.start(); err != nil {
			return err
		}
	}
	err := pl.waitNodes(ctx, restart, len(pl.workers))
	ready := time.Since(restart)
	if err != nil {
		return err
	}
	e.logf("cold start    workers restarted and listed in %.0f ms", ms(ready))
	for i, f := range fns {
		w := work{names[i], []byte(f.args), contains(f.want)}
		cs := ColdStart{Target: tEdgefaas, Function: f.label, Case: "worker restart (disk cache)", PrepMS: ms(ready)}
		var err error
		cs.FirstMS, cs.WarmMS, err = firstAndWarm(ctx, w, t)
		cs.TotalMS = cs.PrepMS + cs.FirstMS
		if err != nil {
			cs.Err = err.Error()
		}
		e.r.ColdStarts = append(e.r.ColdStarts, cs)
		e.logf("cold start    %s restart %s: first invoke %.1f ms (warm %.2f ms) %s", tEdgefaas, f.label, cs.FirstMS, cs.WarmMS, cs.Err)
	}
	// Warm the restarted workers for what follows.
	for _, wk := range e.checks() {
		c, cancel := context.WithTimeout(ctx, 30*time.Second)
		wk.call(t)(c)
		cancel()
	}
	return nil
}

func firstAndWarm(ctx context.Context, w work, t *target) (first, warm float64, err error) {
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	t0 := time.Now()
	if err = w.call(t)(c); err != nil {
		return ms(time.Since(t0)), 0, err
	}
	first = ms(time.Since(t0))
	t0 = time.Now()
	err = w.call(t)(c)
	return first, ms(time.Since(t0)), err
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// sustained runs hello at SustainedConns for Sustained on the cluster and
// reports each slice.
func (e *env) sustained(ctx context.Context) error {
	t := e.byName[tEdgefaas]
	pids := t.pids()
	start := time.Now()
	spec := loadSpec{Threads: e.o.SustainedConns, Duration: e.o.Sustained, Slice: e.o.SustainedSlice,
		onSlice: func(i int, r *runResult) {
			s := summarize(t.name, fmt.Sprintf("sustained slice %d", i+1), r, 0)
			sl := SustainedSlice{Target: t.name, Index: i + 1, EndS: time.Since(start).Seconds(), Summary: s, CoreMiB: mib(procRSS(pids[0]))}
			for _, p := range pids[1:] {
				sl.WorkerMiB += mib(procRSS(p))
			}
			e.r.Sustained = append(e.r.Sustained, sl)
			e.logf("sustained     slice %-3d %.0f req/s p99=%.0fµs err=%d core %.1f MiB worker %.1f MiB", i+1, s.Throughput, s.P99, s.Errors, sl.CoreMiB, sl.WorkerMiB)
		}}
	r := runLoad(ctx, spec, e.helloWork().call(t), t.pids)
	// Requests after the last full slice are counted in a final partial one.
	var inSlices, errSlices int
	for _, s := range e.r.Sustained {
		inSlices += s.Summary.Requests
		errSlices += s.Summary.Errors
	}
	if rest := r.requests - inSlices; rest > 0 {
		e.r.Notes = append(e.r.Notes, fmt.Sprintf("sustained: %d requests (%d errors) completed after the last full slice and are only in the totals.", rest, r.errors-errSlices))
		e.r.Workloads = append(e.r.Workloads, Summary{Target: t.name, Workload: "sustained (tail)", Requests: rest, Errors: r.errors - errSlices})
	}
	return nil
}

// artifacts records the size of every example function, raw and gzipped.
func (e *env) artifacts(ctx context.Context) error {
	files, _ := filepath.Glob(filepath.Join(e.o.WasmDir, "*.wasm"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
		zw.Write(b)
		zw.Close()
		a := Artifact{Name: strings.TrimSuffix(filepath.Base(f), ".wasm"), Bytes: int64(len(b)), GzipBytes: int64(z.Len())}
		if info, err := wasm.Inspect(ctx, b); err == nil {
			a.ABI = string(info.ABI)
		}
		a.Language = "Go"
		if strings.HasSuffix(a.Name, "-c") {
			a.Language = "C"
		}
		e.r.Artifacts = append(e.r.Artifacts, a)
	}
	if fi, err := os.Stat(e.o.Binary); err == nil {
		e.r.Artifacts = append(e.r.Artifacts, Artifact{Name: "edgefaas (the binary, for scale)", Bytes: fi.Size(), Language: "Go"})
	}
	if !e.o.Quick {
		e.releaseBinaries(ctx)
	}
	return nil
}

// releaseBinaries records the size of the static release binary for each
// edge architecture, built as `make dist` builds them (CGO off, stripped).
func (e *env) releaseBinaries(ctx context.Context) {
	dir, err := os.MkdirTemp("", "edgefaas-dist-")
	if err != nil {
		return
	}
	defer os.RemoveAll(dir)
	for _, t := range []struct{ goarch, goarm, name string }{{"amd64", "", "linux/amd64"}, {"arm64", "", "linux/arm64"}, {"arm", "7", "linux/arm v7"}} {
		out := filepath.Join(dir, "edgefaas-"+t.goarch)
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", out, "./cmd/edgefaas")
		cmd.Dir = e.o.Root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+t.goarch, "GOARM="+t.goarm)
		if b, err := cmd.CombinedOutput(); err != nil {
			e.r.Notes = append(e.r.Notes, fmt.Sprintf("release binary %s not built: %v %s", t.name, err, oneLine(string(b))))
			continue
		}
		b, err := os.ReadFile(out)
		if err != nil {
			continue
		}
		var z bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
		zw.Write(b)
		zw.Close()
		e.r.Artifacts = append(e.r.Artifacts, Artifact{Name: "edgefaas release binary, " + t.name + " (static, stripped)",
			Bytes: int64(len(b)), GzipBytes: int64(z.Len()), Language: "Go"})
	}
}
