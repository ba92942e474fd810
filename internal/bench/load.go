package bench

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// runResult is what a closed-loop run recorded: the raw latency of every
// successful request and the count of failures.
type runResult struct {
	latencies   []time.Duration
	requests    int
	errors      int
	firstErr    string
	wall        time.Duration
	cpu         time.Duration // servers' CPU time during the run
	concurrency int
}

// loadSpec is one closed-loop run: Threads clients, each sending requests
// back to back (the next one when the previous one answered), either
// PerThread requests each or until Duration has passed.
type loadSpec struct {
	Threads   int
	PerThread int           // requests per client; 0: run for Duration
	Duration  time.Duration // with PerThread 0
	Timeout   time.Duration // per request; a request over it counts as an error
	// Slice, if not zero, also cuts the run into consecutive time slices
	// (for the sustained run); onSlice is called at each boundary.
	Slice   time.Duration
	onSlice func(i int, r *runResult)
}

// call performs one request; a non-nil error counts it as failed.
type call func(ctx context.Context) error

// runLoad runs spec against fn and measures the CPU time of pids meanwhile.
func runLoad(ctx context.Context, spec loadSpec, fn call, pids func() []int) *runResult {
	if spec.Threads < 1 {
		spec.Threads = 1
	}
	if spec.Timeout <= 0 {
		spec.Timeout = 30 * time.Second
	}
	type local struct {
		lat      []time.Duration
		n, errs  int
		firstErr string
	}
	locals := make([]local, spec.Threads)
	var deadline time.Time
	start := time.Now()
	if spec.PerThread == 0 {
		deadline = start.Add(spec.Duration)
	}
	var ps []int
	if pids != nil {
		ps = pids()
	}
	cpu0 := cpuOf(ps)

	// Slices: a ticker goroutine snapshots the per-thread results; each
	// thread appends under its own lock.
	var mu = make([]sync.Mutex, spec.Threads)
	stopSlices := make(chan struct{})
	slicesDone := make(chan struct{})
	if spec.Slice > 0 && spec.onSlice != nil {
		go func() {
			defer close(slicesDone)
			marks := make([]int, spec.Threads) // per-thread index of the slice's first latency
			errMarks := make([]int, spec.Threads)
			reqMarks := make([]int, spec.Threads)
			t := time.NewTicker(spec.Slice)
			defer t.Stop()
			sliceStart := time.Now()
			cpuMark := cpu0
			for i := 0; ; i++ {
				select {
				case <-stopSlices:
					return
				case <-ctx.Done():
					return
				case <-t.C:
				}
				r := &runResult{concurrency: spec.Threads}
				for k := range locals {
					mu[k].Lock()
					r.latencies = append(r.latencies, locals[k].lat[marks[k]:]...)
					r.errors += locals[k].errs - errMarks[k]
					r.requests += locals[k].n - reqMarks[k]
					marks[k], errMarks[k], reqMarks[k] = len(locals[k].lat), locals[k].errs, locals[k].n
					mu[k].Unlock()
				}
				now := time.Now()
				r.wall = now.Sub(sliceStart)
				sliceStart = now
				c := cpuOf(ps)
				r.cpu, cpuMark = c-cpuMark, c
				spec.onSlice(i, r)
			}
		}()
	} else {
		close(slicesDone)
	}

	var wg sync.WaitGroup
	for k := range spec.Threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := &locals[k]
			for i := 0; ; i++ {
				if spec.PerThread > 0 && i >= spec.PerThread {
					return
				}
				if spec.PerThread == 0 && !time.Now().Before(deadline) {
					return
				}
				if ctx.Err() != nil {
					return
				}
				rctx, cancel := context.WithTimeout(ctx, spec.Timeout)
				t0 := time.Now()
				err := fn(rctx)
				d := time.Since(t0)
				cancel()
				mu[k].Lock()
				l.n++
				if err != nil {
					l.errs++
					if l.firstErr == "" {
						l.firstErr = err.Error()
					}
				} else {
					l.lat = append(l.lat, d)
				}
				mu[k].Unlock()
			}
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	close(stopSlices)
	<-slicesDone
	r := &runResult{wall: wall, cpu: cpuOf(ps) - cpu0, concurrency: spec.Threads}
	for _, l := range locals {
		r.latencies = append(r.latencies, l.lat...)
		r.requests += l.n
		r.errors += l.errs
		if r.firstErr == "" {
			r.firstErr = l.firstErr
		}
	}
	if ctx.Err() != nil && r.firstErr == "" {
		r.firstErr = fmt.Sprintf("run interrupted: %v", ctx.Err())
	}
	return r
}
