package bench

import (
	"math"
	"slices"
	"time"
)

// Summary is the outcome of one workload on one target.
type Summary struct {
	Target   string `json:"target"`
	Workload string `json:"workload"`
	// Requests is how many were attempted; Errors how many failed or
	// timed out (their latencies are not in the percentiles).
	Requests int `json:"requests"`
	Errors   int `json:"errors"`
	// FirstError is the first failure's message, if any.
	FirstError string `json:"first_error,omitempty"`
	// Latency statistics of the successful requests, in microseconds.
	// For sleep they are the overhead (latency minus the sleep).
	P50  float64 `json:"p50_us"`
	P90  float64 `json:"p90_us"`
	P99  float64 `json:"p99_us"`
	Max  float64 `json:"max_us"`
	Mean float64 `json:"mean_us"`
	// Throughput is successful requests per second over the wall time.
	Throughput float64       `json:"throughput_rps"`
	Wall       time.Duration `json:"wall_ns"`
	// CPUPerReq is the servers' CPU time per request, in microseconds
	// (from /proc; the bench process itself for in-process).
	CPUPerReq float64 `json:"cpu_per_req_us"`
	// Concurrency is the number of closed-loop clients.
	Concurrency int `json:"concurrency"`

	latencies []time.Duration // sorted; kept for the CDF plots
}

// summarize computes the statistics of a finished load run.
func summarize(target, workload string, r *runResult, subtract time.Duration) Summary {
	s := Summary{Target: target, Workload: workload, Requests: r.requests, Errors: r.errors,
		FirstError: r.firstErr, Wall: r.wall, Concurrency: r.concurrency}
	lat := make([]time.Duration, len(r.latencies))
	for i, d := range r.latencies {
		lat[i] = d - subtract
	}
	slices.Sort(lat)
	s.latencies = lat
	if n := len(lat); n > 0 {
		var sum float64
		for _, d := range lat {
			sum += us(d)
		}
		s.Mean = sum / float64(n)
		s.P50 = us(pct(lat, 0.50))
		s.P90 = us(pct(lat, 0.90))
		s.P99 = us(pct(lat, 0.99))
		s.Max = us(lat[n-1])
	}
	if r.wall > 0 {
		s.Throughput = float64(len(lat)) / r.wall.Seconds()
	}
	if len(lat) > 0 {
		s.CPUPerReq = us(r.cpu) / float64(len(lat))
	}
	return s
}

// pct is the nearest-rank percentile of sorted durations.
func pct(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// ratio is a/b, 0 when either is missing.
func ratio(a, b float64) float64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	return a / b
}
