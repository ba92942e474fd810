package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// workloadOrder is the report's order of the per-target workloads.
var workloadOrder = []struct{ name, file, what string }{
	{"sleep", "cdf-sleep.png", "overhead: latency minus the sleep"},
	{"server-reply", "cdf-server-reply.png", "TCP round trip to a loopback echo server"},
	{"matrixmult", "cdf-matrixmult.png", "100×100 matrix product"},
	{"network", "cdf-network.png", "16 outbound HTTP GETs to a loopback server per invocation"},
	{"hello (memory run)", "cdf-hello.png", "hello, 4 threads continuously"},
}

// dur formats microseconds for a table.
func dur(usv float64) string {
	switch {
	case usv <= 0:
		return "–"
	case usv < 1000:
		return fmt.Sprintf("%.0f µs", usv)
	case usv < 10000:
		return fmt.Sprintf("%.2f ms", usv/1000)
	case usv < 1e6:
		return fmt.Sprintf("%.1f ms", usv/1000)
	default:
		return fmt.Sprintf("%.2f s", usv/1e6)
	}
}

func x(v float64) string {
	if v <= 0 {
		return "–"
	}
	if v >= 100 {
		return fmt.Sprintf("%.0f×", v)
	}
	if v >= 10 {
		return fmt.Sprintf("%.1f×", v)
	}
	return fmt.Sprintf("%.2f×", v)
}

func rps(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.1fk", v/1000)
	}
	return fmt.Sprintf("%.1f", v)
}

// find returns the summary of target for workload.
func (r *Results) find(target, workload string) (Summary, bool) {
	for _, s := range r.Workloads {
		if s.Target == target && s.Workload == workload {
			return s, true
		}
	}
	return Summary{}, false
}

func (r *Results) throughputOf(target string) (ThroughputRun, bool) {
	for _, t := range r.Throughput {
		if t.Target == target {
			return t, true
		}
	}
	return ThroughputRun{}, false
}

func writeReport(r *Results, dir string) error {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	o := r.opts
	m := r.Machine

	w("# edgefaas benchmark report\n\n")
	if r.TotalErrors > 0 {
		w("> **⚠ This run had errors: %d of %d requests failed or timed out.** They are counted per workload below (column *errors*) and left out of the latency statistics.\n\n", r.TotalErrors, r.Requests)
		for _, s := range r.allSummaries() {
			if s.Errors > 0 {
				w("> - %s on %s: %d of %d failed; first: `%s`\n", s.Workload, s.Target, s.Errors, s.Requests, oneLine(s.FirstError))
			}
		}
		for _, c := range r.ColdStarts {
			if c.Err != "" {
				w("> - cold start %s %s on %s: `%s`\n", c.Function, c.Case, c.Target, oneLine(c.Err))
			}
		}
		w("\n")
	} else {
		w("No request failed or timed out: %d requests, 0 errors.\n\n", r.Requests)
	}
	mode := "full"
	if r.Quick {
		mode = "quick (`--quick`: small sizes; checks that the suite works, its absolute numbers mean little)"
	}
	commit := m.Commit
	if len(commit) > 12 {
		commit = commit[:12]
	}
	if m.Dirty {
		commit += " (with uncommitted changes)"
	}
	w("| machine | |\n| --- | --- |\n")
	w("| CPU | %s |\n| cores | %d (GOMAXPROCS %d) |\n| memory | %s |\n| kernel | Linux %s |\n| Go | %s |\n", m.CPU, m.Cores, m.GOMAXPROCS, m.MemTotal, m.Kernel, m.GoVersion)
	w("| commit measured | `%s` |\n| load average at start | %s (1, 5, 15 min; the machine is shared) |\n| started | %s |\n| duration | %s |\n| mode | %s |\n\n",
		commit, m.LoadAvg, m.Started, r.Duration.Round(time.Second), mode)
	w("Targets, all measured in this run by the same closed-loop Go client over keep-alive connections on loopback:\n\n")
	w("- **edgefaas**: `edgefaas core` + %d `edgefaas worker` process(es) (separate ergo nodes over TLS, 127.0.0.1 → 127.0.0.2).\n", r.Workers)
	if slices.Contains(r.Targets, tSingleBox) {
		w("- **single-box**: `edgefaas core --with-worker`: core and worker applications on one node, one process.\n")
	}
	w("- **native**: the same function bodies in a plain Go `net/http` server (a child process), same URLs and JSON envelope: the limit for the work itself.\n")
	w("- **in-process**: the same `.wasm` invoked in a loop through `wasm.Engine` (wazero) inside the bench process: the floor for Wasm (no HTTP, no actors).\n\n")
	w("Latencies are raw per-request times (no coordinated-omission correction). *CPU/req* is the servers' user+system CPU time (from /proc, 10 ms ticks) per successful request; for in-process it is the bench process's own. Ratios are edgefaas / baseline: **p50 ×** for latency (>1 is slower), **req/s ×** for throughput (<1 is fewer).\n\n")

	writePath(w, r)
	writeRecords(w, r)

	// Summary.
	w("## Summary\n\n")
	w("| workload | target | p50 | p99 | req/s | CPU/req | p50 × native | p50 × in-process | errors |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, wl := range workloadOrder {
		nat, _ := r.find(tNative, wl.name)
		inp, _ := r.find(tInProc, wl.name)
		for _, t := range []string{tEdgefaas, tSingleBox} {
			s, ok := r.find(t, wl.name)
			if !ok {
				continue
			}
			w("| %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", wl.name, t, dur(s.P50), dur(s.P99), rps(s.Throughput), dur(s.CPUPerReq),
				x(ratio(s.P50, nat.P50)), x(ratio(s.P50, inp.P50)), s.Errors)
		}
	}
	nat, _ := r.throughputOf(tNative)
	inp, _ := r.throughputOf(tInProc)
	for _, t := range []string{tEdgefaas, tSingleBox} {
		tr, ok := r.throughputOf(t)
		if !ok {
			continue
		}
		w("| peak throughput (hello) | %s | – | %s | **%s** (c=%d) | %s | req/s × native **%s** | req/s × in-process %s | |\n", t, dur(tr.PeakP99), rps(tr.Peak), tr.PeakAt, dur(tr.PeakCPU),
			x(ratio(tr.Peak, nat.Peak)), x(ratio(tr.Peak, inp.Peak)))
	}
	if len(r.Sustained) > 0 {
		first, last := r.Sustained[0].Summary, r.Sustained[len(r.Sustained)-1].Summary
		w("| sustained (hello, %d conns, %s) | edgefaas | %s (last slice) | %s (last slice) | %s first → %s last slice | %s | throughput last/first **%s** | | |\n",
			o.SustainedConns, o.Sustained, dur(last.P50), dur(last.P99), rps(first.Throughput), rps(last.Throughput), dur(last.CPUPerReq), x(ratio(last.Throughput, first.Throughput)))
	}
	w("\n")

	// Per workload.
	w("## Workloads\n\n")
	w("Shapes: sleep %d threads × %d sequential requests (sleep %d ms; figures are the overhead above it); server-reply %d × %d; matrixmult %d × %d; network %d sequential invocations × 16 outbound requests; hello memory run %d threads for %s.\n\n",
		o.Threads, o.SleepPer, o.SleepMS, o.Threads, o.ReplyPer, o.Threads, o.MatrixPer, o.NetworkN, o.Threads, o.MemoryFor)
	for _, wl := range workloadOrder {
		var ss []Summary
		for _, t := range r.Targets {
			if s, ok := r.find(t, wl.name); ok {
				ss = append(ss, s)
			}
		}
		if len(ss) == 0 {
			continue
		}
		w("### %s — %s\n\n", wl.name, wl.what)
		w("| target | requests | errors | p50 | p90 | p99 | max | mean | req/s | CPU/req | p50 × native | p50 × in-process | mean × native |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
		nat, _ := r.find(tNative, wl.name)
		inp, _ := r.find(tInProc, wl.name)
		for _, s := range ss {
			w("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s.Target, s.Requests, s.Errors, dur(s.P50), dur(s.P90), dur(s.P99), dur(s.Max), dur(s.Mean),
				rps(s.Throughput), dur(s.CPUPerReq), x(ratio(s.P50, nat.P50)), x(ratio(s.P50, inp.P50)), x(ratio(s.Mean, nat.Mean)))
		}
		if err := cdfPlot(dir, wl.file, "latency CDF: "+wl.name+" ("+wl.what+")", ss); err != nil {
			return err
		}
		w("\n![%s CDF](%s)\n\n", wl.name, wl.file)
	}

	if len(r.Throughput) > 0 {
		// Throughput.
		w("## Throughput — hello at increasing concurrency\n\n")
		w("Each step runs %s closed loop; the sweep stops when p99 exceeds %s (or a request fails). Peak = the best step within the bound.\n\n", o.ThroughputStep, o.ThroughputP99)
		w("| target | peak req/s | at conns | p99 there | CPU/req there | req/s × native | req/s × in-process | stopped |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
		for _, tr := range r.Throughput {
			w("| %s | %s | %d | %s | %s | %s | %s | %s |\n", tr.Target, rps(tr.Peak), tr.PeakAt, dur(tr.PeakP99), dur(tr.PeakCPU), x(ratio(tr.Peak, nat.Peak)), x(ratio(tr.Peak, inp.Peak)), tr.StoppedWhy)
		}
		w("\n| target | conns | requests | errors | req/s | p50 | p99 | max | CPU/req |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
		for _, tr := range r.Throughput {
			for _, s := range tr.Steps {
				w("| %s | %d | %d | %d | %s | %s | %s | %s | %s |\n", tr.Target, s.Concurrency, s.Requests, s.Errors, rps(s.Throughput), dur(s.P50), dur(s.P99), dur(s.Max), dur(s.CPUPerReq))
			}
		}
		if err := throughputPlot(dir, r.Throughput); err != nil {
			return err
		}
		w("\n![throughput](throughput.png)\n\n")

	}

	// Memory.
	w("## Memory — RSS during the hello memory run\n\n")
	w("Sampled once a second (VmRSS from /proc) while %d threads invoke hello for %s; *after start* is each process once started, with the functions uploaded and each invoked once, before any load; *idle before this run* is after the earlier workloads. The paper's FunLess worker: ~438 MB including ~300 MB OS on a Raspberry Pi 3B+; its core ~620 MB including OS, Postgres, Prometheus and Docker.\n\n", o.Threads, o.MemoryFor)
	startOf := func(target, process string) string {
		for _, s := range r.StartRSS {
			if s.Target == target && s.Process == process {
				return fmt.Sprintf("%.1f", s.IdleMiB)
			}
		}
		return "–"
	}
	w("| target | process | after start (MiB) | idle before this run (MiB) | peak (MiB) | end (MiB) |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, s := range r.Memory {
		pk, end := 0.0, 0.0
		if len(s.RSSMiB) > 0 {
			pk, end = slices.Max(s.RSSMiB), s.RSSMiB[len(s.RSSMiB)-1]
		}
		w("| %s | %s | %s | %.1f | %.1f | %.1f |\n", s.Target, s.Process, startOf(s.Target, s.Process), s.IdleMiB, pk, end)
	}
	if len(r.Memory) > 0 {
		if err := rssPlot(dir, "rss.png", r.Memory, o.MemoryFor.Seconds()); err != nil {
			return err
		}
		w("\n![RSS over time](rss.png)\n\n")
	}

	// Cold start.
	w("## Cold start\n\n")
	w("*upload*: a function with code never seen before (its hash made unique) is uploaded (the answer waits until the worker has compiled it) and invoked; *worker restart*: the cluster's workers are stopped and started again on the same data directory (compiled code on disk), and the function is invoked once they are listed again; *compile (no cache)*: the in-process floor, wazero compile + first call.\n\n")
	w("| target | function | case | prepare | first invoke | total | next (warm) invoke | error |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, c := range r.ColdStarts {
		prep := "upload " + dur(c.PrepMS*1000)
		switch {
		case strings.HasPrefix(c.Case, "worker"):
			prep = "restart → listed " + dur(c.PrepMS*1000)
		case strings.HasPrefix(c.Case, "compile"):
			prep = "compile " + dur(c.PrepMS*1000)
		}
		w("| %s | %s | %s | %s | %s | %s | %s | %s |\n", c.Target, c.Function, c.Case, prep, dur(c.FirstMS*1000), dur(c.TotalMS*1000), dur(c.WarmMS*1000), oneLine(c.Err))
	}
	w("\n")

	if r.JavaScript != nil {
		w("%s", r.JavaScript.markdown(o))
	}

	// Sustained.
	if len(r.Sustained) > 0 {
		w("## Sustained — hello at %d connections for %s on edgefaas\n\n", o.SustainedConns, o.Sustained)
		first, last := r.Sustained[0].Summary, r.Sustained[len(r.Sustained)-1].Summary
		verdict := "held steady"
		if ratio(last.Throughput, first.Throughput) < 0.8 {
			verdict = "**degraded**"
		}
		w("Throughput %s: %s req/s in the first slice, %s in the last (%s). A peer platform measured here lost 80%% after 5 minutes.\n\n", verdict, rps(first.Throughput), rps(last.Throughput), x(ratio(last.Throughput, first.Throughput)))
		w("| slice | end (s) | requests | errors | req/s | p50 | p99 | max | CPU/req | core RSS (MiB) | worker RSS (MiB) |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
		for _, s := range r.Sustained {
			w("| %d | %.0f | %d | %d | %s | %s | %s | %s | %s | %.1f | %.1f |\n", s.Index, s.EndS, s.Summary.Requests, s.Summary.Errors, rps(s.Summary.Throughput), dur(s.Summary.P50), dur(s.Summary.P99), dur(s.Summary.Max), dur(s.Summary.CPUPerReq), s.CoreMiB, s.WorkerMiB)
		}
		if err := sustainedPlot(dir, r.Sustained); err != nil {
			return err
		}
		w("\n![sustained throughput](sustained-throughput.png)\n![sustained latency](sustained-p99.png)\n![sustained RSS](sustained-rss.png)\n\n")
	}

	// Artifacts.
	w("## Artifact sizes\n\n| function | language | ABI | bytes | gzip -9 bytes |\n| --- | --- | --- | --- | --- |\n")
	for _, a := range r.Artifacts {
		gz := "–"
		if a.GzipBytes > 0 {
			gz = fmt.Sprintf("%d (%.1f KiB)", a.GzipBytes, float64(a.GzipBytes)/1024)
		}
		w("| %s | %s | %s | %d (%.1f KiB) | %s |\n", a.Name, a.Language, a.ABI, a.Bytes, float64(a.Bytes)/1024, gz)
	}
	w("\nFunLess's paper: ~0.94 MB per Wasm function vs 20–48 MB container images.\n\n")
	if r.EdgeBudget != nil {
		w("%s", r.EdgeBudget.markdown())
	}
	if r.Attacks != nil {
		w("%s", r.Attacks.markdown())
	}
	if r.Replicated != nil {
		w("%s", r.Replicated.markdown())
	}
	if len(r.Notes) > 0 {
		w("## Notes\n\n")
		for _, n := range r.Notes {
			w("- %s\n", n)
		}
		w("\n")
	}
	w("Raw figures: [results.json](results.json); the raw latency of every request of the paper's workloads: [latencies.csv](latencies.csv).\n")
	if err := writeLatencies(r, filepath.Join(dir, "latencies.csv")); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "report.md"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, "results.json"), r)
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "/")
	s = strings.ReplaceAll(s, "`", "'")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// writeLatencies writes the raw latency of every successful request of the
// paper's four workloads (not hello's memory run, throughput sweep or sustained run):
// target, workload, microseconds (sorted; for sleep, the overhead).
func writeLatencies(r *Results, path string) error {
	var b strings.Builder
	b.WriteString("target,workload,latency_us\n")
	for _, s := range r.Workloads {
		if strings.HasPrefix(s.Workload, "hello") {
			continue // hundreds of thousands of requests: the CDF plot shows them
		}
		for _, d := range s.latencies {
			fmt.Fprintf(&b, "%s,%s,%.1f\n", s.Target, s.Workload, us(d))
		}
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
