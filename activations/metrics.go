package activations

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgefaas/edgefaas/storage"
)

// DefaultFunctionLabels bounds the module/function label pairs of the
// per-function series: the first pairs seen since the core started get
// their own series; later ones share module="_other", function="_other".
// With 9 statuses and a 12-bucket histogram this bounds the per-function
// series to about 100 × (9 + 14).
const DefaultFunctionLabels = 100

// OtherLabel is the module and function label of functions beyond the bound.
const OtherLabel = "_other"

// Metrics are the per-function invocation series and the records' and
// queue's own series. It is a prometheus.Collector.
type Metrics struct {
	invocations *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	dropped     prometheus.Counter
	written     prometheus.Counter
	pruned      prometheus.Counter
	bytes       prometheus.Gauge
	depth       prometheus.GaugeFunc
	age         prometheus.GaugeFunc

	mu     sync.Mutex
	max    int
	seen   map[[2]string]bool
	queue  *Queue
	queueM sync.Mutex
}

// NewMetrics returns the metrics with at most maxFunctions label pairs
// (0: DefaultFunctionLabels).
func NewMetrics(maxFunctions int) *Metrics {
	if maxFunctions <= 0 {
		maxFunctions = DefaultFunctionLabels
	}
	m := &Metrics{max: maxFunctions, seen: map[[2]string]bool{}}
	m.invocations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edgefaas_function_invocations_total",
		Help: "Finished activations by module, function and status (at most a bounded number of functions; the rest are module=function=\"_other\").",
	}, []string{"module", "function", "status"})
	m.duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "edgefaas_function_duration_seconds",
		Help:    "Time functions spent running, by module and function (bounded like edgefaas_function_invocations_total).",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
	}, []string{"module", "function"})
	m.dropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "edgefaas_activation_records_dropped_total",
		Help: "Records of synchronous invocations not written because the writer's buffer was full.",
	})
	m.written = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "edgefaas_activation_records_written_total", Help: "Activation records written (a record is written again at each status change).",
	})
	m.pruned = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "edgefaas_activation_records_pruned_total", Help: "Activation records deleted by retention (age or total bytes).",
	})
	m.bytes = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "edgefaas_activation_records_bytes", Help: "Bytes the activation records take in storage, as of the last retention run.",
	})
	m.depth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "edgefaas_async_queue_depth", Help: "Asynchronous activations queued or running.",
	}, func() float64 {
		if q := m.getQueue(); q != nil {
			return float64(q.Depth())
		}
		return 0
	})
	m.age = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "edgefaas_async_queue_oldest_age_seconds", Help: "Age of the oldest asynchronous activation still waiting to run (0 if none).",
	}, func() float64 {
		if q := m.getQueue(); q != nil {
			return q.OldestAge().Seconds()
		}
		return 0
	})
	return m
}

func (m *Metrics) setQueue(q *Queue) {
	m.queueM.Lock()
	m.queue = q
	m.queueM.Unlock()
}

func (m *Metrics) getQueue() *Queue {
	m.queueM.Lock()
	defer m.queueM.Unlock()
	return m.queue
}

// labels returns the module and function labels within the bound.
func (m *Metrics) labels(module, function string) (string, string) {
	k := [2]string{module, function}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen[k] {
		return module, function
	}
	if len(m.seen) < m.max {
		m.seen[k] = true
		return module, function
	}
	return OtherLabel, OtherLabel
}

// observe counts a final record.
func (m *Metrics) observe(a storage.Activation) {
	if !storage.FinalStatus(a.Status) {
		return
	}
	mod, fn := m.labels(a.Module, a.Function)
	m.invocations.WithLabelValues(mod, fn, a.Status).Inc()
	if ran(a.Status) {
		m.duration.WithLabelValues(mod, fn).Observe(a.DurationMS / 1000)
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.invocations, m.duration, m.dropped, m.written, m.pruned, m.bytes, m.depth, m.age}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m.collectors() {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m.collectors() {
		c.Collect(ch)
	}
}

// ran reports whether a status means the function ran to an outcome.
func ran(status string) bool {
	switch status {
	case storage.StatusSuccess, storage.StatusFunctionError, storage.StatusRuntimeError, storage.StatusTimeout:
		return true
	}
	return false
}
