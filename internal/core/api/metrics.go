package api

import (
	"errors"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/edgefaas/edgefaas/internal/core/invocation"
	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// httpMetrics counts requests by route pattern (never by raw path, which
// would explode cardinality) and records latency in histograms: summaries
// with quantile objectives slow down over time on a hot path.
type httpMetrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// listScanned counts the records list requests examined: what
	// listing and long polls cost the store.
	listScanned prometheus.Counter
	// quotaRefused counts the requests a quota refused, by the quota's
	// name: a fixed set of labels, never the subject's.
	quotaRefused *prometheus.CounterVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "edgefaas", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "edgefaas", Subsystem: "http", Name: "request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern and method.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route", "method"}),
		listScanned: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "edgefaas", Subsystem: "activation", Name: "list_scanned_total",
			Help: "Activation records examined by list requests and long polls.",
		}),
		quotaRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "edgefaas", Subsystem: "quota", Name: "refusals_total",
			Help: "Requests refused by a subject's quota, by the quota's name.",
		}, []string{"quota"}),
	}
	reg.MustRegister(m.requests, m.latency, m.listScanned, m.quotaRefused)
	return m
}

// refusedByQuota counts err if a quota refused it.
func (m *httpMetrics) refusedByQuota(err error) {
	var qe *storage.QuotaError
	if errors.As(err, &qe) {
		m.quotaRefused.WithLabelValues(qe.Quota).Inc()
	}
}

// observe counts a request of a route whose method is only known per
// request (the unmatched handlers).
func (m *httpMetrics) observe(route, method string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route, method).Observe(d.Seconds())
}

// routeMetrics are one route's label handles, resolved when the route is
// registered so that a request does no label lookup (hash + map + lock) of
// its own: the latency observer, and the counters of the statuses the API
// answers (others are looked up, which only unusual answers pay).
type routeMetrics struct {
	m             *httpMetrics
	route, method string
	latency       prometheus.Observer
	codes         map[int]prometheus.Counter // read-only after forRoute
}

// commonStatuses are the statuses whose counters are resolved in advance.
var commonStatuses = []int{200, 201, 202, 204, 400, 401, 403, 404, 409, 413, 422, 429, 500, 503, 504}

func (m *httpMetrics) forRoute(route, method string) *routeMetrics {
	rm := &routeMetrics{m: m, route: route, method: method,
		latency: m.latency.WithLabelValues(route, method), codes: make(map[int]prometheus.Counter, len(commonStatuses))}
	for _, c := range commonStatuses {
		rm.codes[c] = m.requests.WithLabelValues(route, method, strconv.Itoa(c))
	}
	return rm
}

func (rm *routeMetrics) observe(status int, d time.Duration) {
	c, ok := rm.codes[status]
	if !ok {
		c = rm.m.requests.WithLabelValues(rm.route, rm.method, strconv.Itoa(status))
	}
	c.Inc()
	rm.latency.Observe(d.Seconds())
}

// storeCollector reports the database's contents at scrape time.
type storeCollector struct {
	store *storage.Store
	log   *slog.Logger
}

var (
	descModules   = prometheus.NewDesc("edgefaas_modules", "Modules stored, including the default module _.", nil, nil)
	descFunctions = prometheus.NewDesc("edgefaas_functions", "Functions stored, across all modules.", nil, nil)
	descCodeBlobs = prometheus.NewDesc("edgefaas_code_blobs", "Distinct code blobs stored (one per sha256).", nil, nil)
	descCodeBytes = prometheus.NewDesc("edgefaas_code_bytes", "Total size of the distinct code blobs, in bytes.", nil, nil)
	descDiskBytes = prometheus.NewDesc("edgefaas_storage_disk_bytes", "Disk space used by the database, in bytes.", nil, nil)
	descRefused   = prometheus.NewDesc("edgefaas_storage_writes_refused_total", "Writes refused because the disk holding the database was full (answered 507).", nil, nil)
	descDiskFull  = prometheus.NewDesc("edgefaas_storage_disk_full", "1 while writes are refused because the disk holding the database is full, else 0.", nil, nil)
)

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descModules, descFunctions, descCodeBlobs, descCodeBytes, descDiskBytes, descRefused, descDiskFull} {
		ch <- d
	}
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	full, refused := c.store.DiskFull()
	ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(refused))
	ch <- prometheus.MustNewConstMetric(descDiskFull, prometheus.GaugeValue, map[bool]float64{true: 1}[full])
	st, err := c.store.Stats()
	if err != nil {
		c.log.Warn("metrics: cannot read storage statistics", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(descModules, prometheus.GaugeValue, float64(st.Modules))
	ch <- prometheus.MustNewConstMetric(descFunctions, prometheus.GaugeValue, float64(st.Functions))
	ch <- prometheus.MustNewConstMetric(descCodeBlobs, prometheus.GaugeValue, float64(st.CodeBlobs))
	ch <- prometheus.MustNewConstMetric(descCodeBytes, prometheus.GaugeValue, float64(st.CodeBytes))
	ch <- prometheus.MustNewConstMetric(descDiskBytes, prometheus.GaugeValue, float64(st.DiskBytes))
}

// serveMetrics answers GET /metrics for its caller. Admins get every
// series. Anyone else gets the platform's series and only the
// per-function ones (labels module and function) of the functions it can
// see through the API: its own; anonymous scrapes (--public-metrics,
// without a token) get none, and nobody but an admin gets the "_other"
// series, which sums other tenants' functions. Why: docs/RATIONALE.md,
// "Who sees which metrics".
func (s *Server) serveMetrics(c *call) error {
	sub := c.subject
	if sub.Name == "" && c.r.Header.Get("Authorization") != "" {
		// Public metrics with a token: the token's view.
		var err error
		if sub, err = s.authenticate(c.r, user); err != nil {
			return err
		}
	}
	if sub.Admin {
		s.prom.ServeHTTP(c.w, c.r)
		return nil
	}
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		mfs, err := s.reg.Gather()
		return s.tenantSeries(sub, mfs), err
	})
	promhttp.HandlerFor(g, s.promOpts).ServeHTTP(c.w, c.r)
	return nil
}

// tenantSeries keeps, of mfs, what sub may see (serveMetrics); sub is the
// zero Subject for an anonymous scrape.
func (s *Server) tenantSeries(sub storage.Subject, mfs []*dto.MetricFamily) []*dto.MetricFamily {
	seen := map[[2]string]bool{}
	sees := func(module, function string) bool {
		k := [2]string{module, function}
		if v, ok := seen[k]; ok {
			return v
		}
		v := false
		if m, err := s.cfg.Store.GetModule(module); err == nil && visibleModule(sub, m) {
			v = true
			if function != "" {
				f, err := s.cfg.Store.GetFunction(module, function)
				v = err == nil && visibleFunction(sub, f)
			}
		}
		seen[k] = v
		return v
	}
	out := mfs[:0]
	for _, mf := range mfs {
		kept := mf.Metric[:0]
		for _, m := range mf.Metric {
			module, function, perFunction := "", "", false
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "module":
					module, perFunction = l.GetValue(), true
				case "function":
					function = l.GetValue()
				}
			}
			if !perFunction || sub.Name != "" && module != invocation.OtherSeries && sees(module, function) {
				kept = append(kept, m)
			}
		}
		if len(kept) > 0 {
			mf.Metric = kept
			out = append(out, mf)
		}
	}
	return out
}
