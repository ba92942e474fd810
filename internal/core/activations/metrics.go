package activations

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgefaas/edgefaas/internal/core/storage"
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
	local       prometheus.Counter
	pruned      prometheus.Counter
	bytes       prometheus.Gauge
	depth       prometheus.GaugeFunc
	age         prometheus.GaugeFunc
	attempts    prometheus.CounterFunc
	argsRead    prometheus.CounterFunc

	mu     sync.Mutex
	max    int
	seen   map[[2]string]*fnSeries // under mu; read through fast
	fast   sync.Map                // [2]string → *fnSeries, lock-free on the hot path
	other  *fnSeries
	queue  *Queue
	queueM sync.Mutex
}

// NewMetrics returns the metrics with at most maxFunctions label pairs
// (0: DefaultFunctionLabels).
func NewMetrics(maxFunctions int) *Metrics {
	if maxFunctions <= 0 {
		maxFunctions = DefaultFunctionLabels
	}
	m := &Metrics{max: maxFunctions, seen: map[[2]string]*fnSeries{}}
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
	m.local = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "edgefaas_activation_records_unreplicated_total",
		Help: "Records of synchronous invocations a core group's log did not take (no majority, a lost leader): written on this core only.",
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
	m.attempts = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "edgefaas_async_attempts_total", Help: "Runs of asynchronous activations, counting those that found no worker to take them.",
	}, func() float64 {
		if q := m.getQueue(); q != nil {
			return float64(q.Attempts())
		}
		return 0
	})
	m.argsRead = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "edgefaas_async_args_read_total", Help: "Asynchronous activations' args read from storage for a worker to run them.",
	}, func() float64 {
		if q := m.getQueue(); q != nil {
			return float64(q.ArgsRead())
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

// fnSeries are one label pair's series, resolved on first use: observing
// a call then costs a map lookup and two atomic adds, not a label hash and
// a lock per series.
type fnSeries struct {
	module, function string // the labels (OtherLabel beyond the bound)
	status           [len(finalStatuses)]atomic.Pointer[prometheus.Counter]
	duration         prometheus.Observer
}

// finalStatuses index fnSeries.status.
var finalStatuses = [...]string{storage.StatusSuccess, storage.StatusFunctionError, storage.StatusRuntimeError,
	storage.StatusTimeout, storage.StatusBusy, storage.StatusNoWorker, storage.StatusLost, storage.StatusCanceled}

func statusIndex(s string) int {
	for i, f := range finalStatuses {
		if f == s {
			return i
		}
	}
	return -1
}

// series returns the series of module and function within the bound.
func (m *Metrics) series(module, function string) *fnSeries {
	k := [2]string{module, function}
	if s, ok := m.fast.Load(k); ok {
		return s.(*fnSeries)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.seen[k]; s != nil {
		return s
	}
	if len(m.seen) >= m.max {
		if m.other == nil {
			m.other = &fnSeries{module: OtherLabel, function: OtherLabel, duration: m.duration.WithLabelValues(OtherLabel, OtherLabel)}
		}
		return m.other
	}
	s := &fnSeries{module: module, function: function, duration: m.duration.WithLabelValues(module, function)}
	m.seen[k] = s
	m.fast.Store(k, s)
	return s
}

// Forget drops the series of module/function (deleted, or renamed away)
// and frees its place within the bound: whoever creates the name next
// starts from no counts, never its previous owner's. A call of the old
// function still finishing counts into series no longer exported.
func (m *Metrics) Forget(module, function string) {
	k := [2]string{module, function}
	m.mu.Lock()
	delete(m.seen, k)
	m.fast.Delete(k)
	m.mu.Unlock()
	m.invocations.DeletePartialMatch(prometheus.Labels{"module": module, "function": function})
	m.duration.DeleteLabelValues(module, function)
}

// observe counts a final record.
func (m *Metrics) observe(a storage.Activation) {
	if !storage.FinalStatus(a.Status) {
		return
	}
	s := m.series(a.Module, a.Function)
	if i := statusIndex(a.Status); i >= 0 {
		c := s.status[i].Load()
		if c == nil {
			v := m.invocations.WithLabelValues(s.module, s.function, a.Status)
			s.status[i].Store(&v)
			c = &v
		}
		(*c).Inc()
	} else { // a status this version does not know
		m.invocations.WithLabelValues(s.module, s.function, a.Status).Inc()
	}
	if ran(a.Status) {
		s.duration.Observe(a.DurationMS / 1000)
	}
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.invocations, m.duration, m.dropped, m.written, m.local, m.pruned, m.bytes, m.depth, m.age, m.attempts, m.argsRead}
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
