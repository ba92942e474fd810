package invoker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the core's invocation metrics. Histograms, not summaries:
// summaries with quantile objectives grow slower with every observation on
// a hot path (a peer platform lost 80% of its throughput that way).
type Metrics struct {
	invocations *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	retries     *prometheus.CounterVec

	// byResult holds each result's label handles, resolved once: a request
	// does no label lookup (read-only after NewMetrics).
	byResult map[string]resultMetrics
}

type resultMetrics struct {
	invocations prometheus.Counter
	duration    prometheus.Observer
}

// results are the outcomes resultLabel names.
var results = []string{"ok", "function_error", "error", "timeout", "busy", "no_worker", "no_valid_worker", "worker_lost", "canceled"}

// NewMetrics makes the collectors; register them with Collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		invocations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgefaas_invocations_total",
			Help: "Invocations answered by the core, by result: ok, function_error, error, timeout, busy, no_worker, no_valid_worker (an APP script refused), worker_lost, canceled.",
		}, []string{"result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "edgefaas_invocation_duration_seconds",
			Help:    "Time from the core receiving an invocation to its answer, by result.",
			Buckets: []float64{.00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgefaas_invocation_retries_total",
			Help: "Invocations sent again to another worker, by reason: not_sent (the first could not be reached), busy.",
		}, []string{"reason"}),
		byResult: map[string]resultMetrics{},
	}
	for _, r := range results {
		m.byResult[r] = resultMetrics{m.invocations.WithLabelValues(r), m.duration.WithLabelValues(r)}
	}
	return m
}

// Collectors lists the metrics for registration.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.invocations, m.duration, m.retries}
}

func (m *Metrics) observe(result string, since time.Time) {
	if m == nil {
		return
	}
	rm, ok := m.byResult[result]
	if !ok {
		rm = resultMetrics{m.invocations.WithLabelValues(result), m.duration.WithLabelValues(result)}
	}
	rm.invocations.Inc()
	rm.duration.Observe(time.Since(since).Seconds())
}

func (m *Metrics) retried(reason string) {
	if m != nil {
		m.retries.WithLabelValues(reason).Inc()
	}
}
