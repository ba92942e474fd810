// Command edgefaas-bench runs edgefaas's benchmark suite (package bench)
// against the built binary and writes the report into a results folder.
// `make bench` runs it; `make bench-quick` runs it with --quick.
//
//	edgefaas-bench [--quick] [--workers N] [--sustained 10m] [--memory 60s] [--out DIR]
//	edgefaas-bench --only-edge-budget [--edge-memory 20s]   (just the edge-budget section)
//	edgefaas-bench --only-edge-budget --only-go-memory      (just what a Go function costs a worker)
//	edgefaas-bench --only-edge-budget --only-js-memory      (just what JavaScript functions cost a worker)
//	edgefaas-bench --only-group                             (just the replicated-core section)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/edgefaas/edgefaas/internal/bench"
)

func main() {
	bench.MaybeRunNative()
	root := findRoot()
	var o bench.Options
	flag.StringVar(&o.Binary, "binary", filepath.Join(root, "build", "edgefaas"), "the edgefaas binary (make build)")
	flag.StringVar(&o.WasmDir, "wasm", filepath.Join(root, "build", "wasm"), "the built examples (make examples)")
	flag.StringVar(&o.OutDir, "out", "", "results folder (default bench/results/DATE-COMMIT, with -quick under the temp dir)")
	flag.IntVar(&o.Workers, "workers", 1, "worker processes of the cluster shape")
	flag.BoolVar(&o.NoSingleBox, "no-single-box", false, "skip the single-box shape (core --with-worker)")
	flag.BoolVar(&o.Quick, "quick", false, "small sizes, well under a minute: checks the suite works")
	flag.DurationVar(&o.MemoryFor, "memory", 0, "hello memory run duration (default 60s; the paper's is 5m; quick 3s)")
	flag.DurationVar(&o.Sustained, "sustained", 0, "sustained run duration (default 10m; quick 8s)")
	flag.DurationVar(&o.SustainedSlice, "slice", 0, "sustained run slice (default 30s; quick 2s)")
	flag.DurationVar(&o.ThroughputStep, "step", 0, "time per concurrency step of the throughput sweep (default 4s)")
	flag.DurationVar(&o.ThroughputP99, "p99-bound", 0, "throughput sweep stops when p99 exceeds this (default 50ms)")
	flag.IntVar(&o.MaxConcurrency, "max-conns", 0, "highest concurrency of the throughput sweep (default 128)")
	flag.IntVar(&o.SleepMS, "sleep-ms", 0, "the sleep function's sleep (default 3000)")
	flag.DurationVar(&o.PathStep, "path-step", 0, "invocation path: time per measurement (default 4s)")
	flag.IntVar(&o.PathRounds, "path-rounds", 0, "invocation path: rounds, median reported (default 2)")
	flag.IntVar(&o.RecordsRounds, "records-rounds", 0, "activation records on/off: alternating rounds, median reported (default 10)")
	only := flag.String("only", "", "run only these steps, comma-separated (artifacts, sleep, server-reply, matrixmult, network, invocation path, records, throughput, memory, cold start, sustained, javascript, edge budget, attacks, replicated core)")
	flag.DurationVar(&o.EdgeMemoryFor, "edge-memory", 0, "the edge-budget section's memory run (hello, 4 threads; default 20s, quick 3s)")
	onlyEdge := flag.Bool("only-edge-budget", false, "run only the edge-budget section (idle and peak RSS, memory run, smallest cgroup limit); writes edge-budget.md")
	flag.BoolVar(&o.GoMemoryOnly, "only-go-memory", false, "with --only-edge-budget: only what a Go function costs a worker (its breakdown, memory run and six Go examples)")
	flag.BoolVar(&o.JSMemoryOnly, "only-js-memory", false, "with --only-edge-budget: only what JavaScript functions cost a worker (hellojs's memory run, first call, 100 JS functions)")
	onlyGroup := flag.Bool("only-group", false, "run only the replicated-core section (a single core and a group of three cores, each with a worker: upload, async enqueue, the C hello at 16 connections, kill -9 of the leader); writes replicated-core.md")
	goMemWorker := flag.String("go-memory-worker-args", "", "arguments given to the Go-memory account's worker besides its own, space-separated (e.g. \"--memory 64MiB\")")
	replot := flag.String("replot", "", "only redraw the RSS, throughput and sustained plots of a results folder from its results.json")
	flag.Parse()
	if *replot != "" {
		if err := bench.Replot(*replot); err != nil {
			fmt.Fprintf(os.Stderr, "edgefaas-bench: %v\n", err)
			os.Exit(1)
		}
		return
	}
	o.GoMemoryWorkerArgs = strings.Fields(*goMemWorker)
	if *only != "" {
		for _, s := range strings.Split(*only, ",") {
			o.Only = append(o.Only, strings.TrimSpace(s))
		}
	}
	o.Root = root
	o.Log = os.Stderr
	if o.OutDir == "" {
		commit := "nocommit"
		if out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output(); err == nil {
			commit = strings.TrimSpace(string(out))
		}
		name := time.Now().Format("2006-01-02") + "-" + commit
		if o.Quick {
			o.OutDir = filepath.Join(os.TempDir(), "edgefaas-bench-quick", name)
		} else {
			o.OutDir = filepath.Join(root, "bench", "results", name)
		}
	}
	for _, f := range []string{o.Binary, o.WasmDir} {
		if _, err := os.Stat(f); err != nil {
			fmt.Fprintf(os.Stderr, "edgefaas-bench: %v (run `make build examples` first)\n", err)
			os.Exit(2)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *onlyEdge {
		if _, err := bench.RunEdgeBudget(ctx, o); err != nil {
			fmt.Fprintf(os.Stderr, "edgefaas-bench: %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("report: %s\n", filepath.Join(o.OutDir, "edge-budget.md"))
		return
	}
	if *onlyGroup {
		rc, err := bench.RunReplicatedCore(ctx, o)
		if err != nil {
			fmt.Fprintf(os.Stderr, "edgefaas-bench: %v\n", err)
			os.Exit(1)
		}
		fmt.Printf("report: %s\n", filepath.Join(o.OutDir, "replicated-core.md"))
		if n := rc.Errors(); n > 0 {
			fmt.Printf("the section had %d failed or timed-out requests: see the report\n", n)
			os.Exit(3)
		}
		return
	}
	r, err := bench.Run(ctx, o)
	if err != nil {
		fmt.Fprintf(os.Stderr, "edgefaas-bench: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("report: %s\n", filepath.Join(o.OutDir, "report.md"))
	if r.TotalErrors > 0 {
		fmt.Printf("the run had %d failed or timed-out requests of %d: see the top of the report\n", r.TotalErrors, r.Requests)
		os.Exit(3)
	}
}

// findRoot is the repository root: the nearest directory above the
// working directory with a go.mod.
func findRoot() string {
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}
