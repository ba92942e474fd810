package bench

import (
	"io"
	"time"
)

// Options configure a run. Zero fields take the full run's defaults (the
// paper's shapes); Quick shrinks everything so the run takes well under a
// minute (it only checks that the suite works and its numbers are sane).
type Options struct {
	// Binary is the edgefaas binary (build/edgefaas); WasmDir holds the
	// examples (build/wasm); Root is the repository, for the commit.
	Binary, WasmDir, Root string
	// OutDir receives report.md, results.json and the plots.
	OutDir string
	// Workers is the number of worker processes of the cluster shape (1).
	Workers int
	// SingleBox also measures core --with-worker (default true; see NoSingleBox).
	NoSingleBox bool
	Quick       bool

	// Workload sizes.
	SleepMS        int           // the sleep function's sleep (3000)
	SleepPer       int           // sequential requests per thread (25)
	ReplyPer       int           // server-reply requests per thread (200)
	MatrixPer      int           // matrixmult requests per thread (200)
	NetworkN       int           // network invocations (50)
	Threads        int           // threads of those workloads (4)
	MemoryFor      time.Duration // hello memory run (60 s; the paper's 5 min by flag)
	ThroughputStep time.Duration // time per concurrency step (4 s)
	ThroughputP99  time.Duration // stop when p99 exceeds this (50 ms)
	MaxConcurrency int           // highest step (128)
	Sustained      time.Duration // sustained run (10 min)
	SustainedSlice time.Duration // its slices (30 s)
	SustainedConns int           // its connections (16)
	PathStep       time.Duration // invocation path: each measurement (4 s)
	PathWarmup     time.Duration // its warm-up per row (2 s)
	PathRounds     int           // its rounds, whose median is reported (2)
	RecordsRounds  int           // activation records on/off: rounds (10; each PathStep per side)
	JSRounds       int           // hellojs beside the C hello: rounds (4; each PathStep per function)
	JSMatrixPer    int           // matrixmultjs requests per thread (10; ~0.6 s each in the engine)

	// Only, if not empty, runs only the steps of these names (e.g.
	// "invocation path"); setup always runs.
	Only []string
	// EdgeMemoryFor is the edge-budget section's memory run (20 s; quick 1 s).
	EdgeMemoryFor time.Duration
	// GoMemoryOnly runs only the edge-budget section's account of what a
	// Go function costs a worker (RunEdgeBudget).
	GoMemoryOnly bool
	// JSMemoryOnly runs only the edge-budget section's account of what
	// JavaScript functions cost a worker (RunEdgeBudget).
	JSMemoryOnly bool
	// GoMemoryWorkerArgs are given to that account's worker besides its
	// own (e.g. --memory 64MiB: a worker with an edge node's budget).
	GoMemoryWorkerArgs []string

	// Log receives progress lines (nil: discarded).
	Log io.Writer
}

func (o Options) withDefaults() Options {
	q := o.Quick
	def := func(v *int, full, quick int) {
		if *v <= 0 {
			*v = full
			if q {
				*v = quick
			}
		}
	}
	defD := func(v *time.Duration, full, quick time.Duration) {
		if *v <= 0 {
			*v = full
			if q {
				*v = quick
			}
		}
	}
	def(&o.Workers, 1, 1)
	def(&o.SleepMS, 3000, 200)
	def(&o.SleepPer, 25, 2)
	def(&o.ReplyPer, 200, 20)
	def(&o.MatrixPer, 200, 10)
	def(&o.NetworkN, 50, 5)
	def(&o.Threads, 4, 4)
	def(&o.MaxConcurrency, 128, 4)
	def(&o.SustainedConns, 16, 16)
	def(&o.PathRounds, 2, 1)
	def(&o.RecordsRounds, 10, 1)
	def(&o.JSRounds, 4, 1)
	def(&o.JSMatrixPer, 10, 2)
	defD(&o.PathStep, 4*time.Second, 300*time.Millisecond)
	defD(&o.PathWarmup, 2*time.Second, 200*time.Millisecond)
	defD(&o.MemoryFor, 60*time.Second, 2*time.Second)
	defD(&o.ThroughputStep, 4*time.Second, 500*time.Millisecond)
	defD(&o.ThroughputP99, 50*time.Millisecond, 50*time.Millisecond)
	defD(&o.EdgeMemoryFor, 20*time.Second, time.Second)
	defD(&o.Sustained, 10*time.Minute, 3*time.Second)
	defD(&o.SustainedSlice, 30*time.Second, time.Second)
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}
