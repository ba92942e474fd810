package nodes

import (
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var (
	descWorkers  = prometheus.NewDesc("edgefaas_workers", "Workers connected to this core.", nil, nil)
	descInFlight = prometheus.NewDesc("edgefaas_invocations_in_flight", "Invocations sent to remote workers and not yet answered.", nil, nil)
	descRunning  = prometheus.NewDesc("edgefaas_worker_running", "Invocations running on this worker.", nil, nil)
	descQueued   = prometheus.NewDesc("edgefaas_worker_queued", "Invocations waiting for a slot on this worker.", nil, nil)
	descModules  = prometheus.NewDesc("edgefaas_worker_compiled_modules", "Function versions compiled on this worker.", nil, nil)
	descStarted  = prometheus.NewDesc("edgefaas_worker_invocations_total", "Invocations started on this worker.", nil, nil)
	descFailed   = prometheus.NewDesc("edgefaas_worker_failures_total", "Invocations that failed on this worker.", nil, nil)
	descCompiles = prometheus.NewDesc("edgefaas_worker_compiles_total", "Compilations on this worker (from source or the disk cache).", nil, nil)
	descCreated  = prometheus.NewDesc("edgefaas_worker_instances_created_total", "Wasm instances created on this worker.", nil, nil)
	descReused   = prometheus.NewDesc("edgefaas_worker_instances_reused_total", "Invocations served by a warm instance.", nil, nil)
	descLive     = prometheus.NewDesc("edgefaas_worker_instances_live", "Wasm instances alive on this worker, running or idle in a pool.", nil, nil)
	descLinear   = prometheus.NewDesc("edgefaas_worker_linear_memory_bytes", "Linear memory committed by the live instances.", nil, nil)
	descCode     = prometheus.NewDesc("edgefaas_worker_code_bytes", "Compiled code counted against the code budget (held modules and compilations in progress).", nil, nil)
	descReserved = prometheus.NewDesc("edgefaas_worker_memory_reserved_bytes", "Memory reserved from the engine's budget: instances' linear memory plus compiled code.", nil, nil)
	descInChild  = prometheus.NewDesc("edgefaas_worker_child_compiles_total", "Modules compiled from source in a compile child process.", nil, nil)
	descChildMax = prometheus.NewDesc("edgefaas_worker_compile_child_peak_bytes", "The largest peak resident size of a compile child.", nil, nil)
)

// Describe implements prometheus.Collector: the core's invocation metrics
// and, on a single-box node, its worker's.
func (c *Core) Describe(ch chan<- *prometheus.Desc) {
	ch <- descWorkers
	ch <- descInFlight
	c.refusals.Describe(ch)
	for _, m := range c.metrics.Collectors() {
		m.Describe(ch)
	}
	if c.worker != nil {
		c.worker.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (c *Core) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(descWorkers, prometheus.GaugeValue, float64(c.table.Len()))
	ch <- prometheus.MustNewConstMetric(descInFlight, prometheus.GaugeValue, float64(c.pending.Len()))
	c.refusals.Collect(ch)
	for _, m := range c.metrics.Collectors() {
		m.Collect(ch)
	}
	if c.worker != nil {
		c.worker.Collect(ch)
	}
}

// Describe implements prometheus.Collector: the runtime's counters and
// the outbound requests.
func (w *Worker) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRunning, descQueued, descModules, descStarted, descFailed, descCompiles, descCreated, descReused, descLive, descLinear, descCode, descReserved, descInChild, descChildMax} {
		ch <- d
	}
	if w.ownRefusals {
		w.refusals.Describe(ch)
	}
	w.Egress.Describe(ch)
}

// Collect implements prometheus.Collector.
func (w *Worker) Collect(ch chan<- prometheus.Metric) {
	s := w.Engine.Stats()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(descRunning, float64(s.Running))
	gauge(descQueued, float64(s.Queued))
	gauge(descModules, float64(s.Modules))
	counter(descStarted, s.Invocations)
	counter(descFailed, s.Failures)
	counter(descCompiles, s.Compiles)
	counter(descCreated, s.InstancesCreated)
	counter(descReused, s.InstancesReused)
	gauge(descLive, float64(s.InstancesLive))
	gauge(descLinear, float64(s.LinearMemory))
	gauge(descCode, float64(s.CodeBytes))
	gauge(descReserved, float64(s.MemoryReserved))
	counter(descInChild, s.ChildCompiles)
	gauge(descChildMax, float64(s.ChildCompilePeak))
	if w.ownRefusals {
		w.refusals.Collect(ch)
	}
	w.Egress.Collect(ch)
}

// ServeMetrics serves the worker's metrics on addr (GET /metrics) until the
// listener fails; a worker has no API, so this is its only HTTP endpoint.
// It carries counts only, no function data. Without a token in opts the
// endpoint is public (see MetricsOptions).
func (w *Worker) ServeMetrics(addr string, opts ...MetricsOptions) (net.Addr, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(w, prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	var o MetricsOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	return serveMetrics(addr, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), o)
}
