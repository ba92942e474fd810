package sinks

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgefaas/edgefaas/internal/core/sinks/sinkspec"
	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// Defaults of Config.
const (
	DefaultConcurrency     = 8
	DefaultMaxPendingBytes = 64 << 20
	DefaultTimeout         = 10 * time.Second
	// DefaultPerSubjectCallbacks and DefaultPerSubjectCallbackBytes bound
	// one subject's completion callbacks waiting for delivery.
	DefaultPerSubjectCallbacks     = 1000
	DefaultPerSubjectCallbackBytes = DefaultMaxPendingBytes / 4
	mqttIdle                       = time.Minute
)

// Config configures a Dispatcher. Store is required; without HTTP (or
// Dial) every HTTP (or MQTT) delivery fails as refused.
type Config struct {
	Store *storage.Store
	Log   *slog.Logger
	// HTTP and Dial reach sinks under the operator's egress policy.
	HTTP HTTPFunc
	Dial DialFunc
	// Policy bounds retries.
	Policy Policy
	// Concurrency bounds the deliveries in progress at once.
	Concurrency int
	// MaxPendingBytes bounds the results waiting for delivery (in the
	// outbox and in memory); an activation that would exceed it has its
	// deliveries marked failed at once ("backlog full") rather than
	// waiting: the invocation never blocks on its sinks.
	MaxPendingBytes int64
	// Timeout bounds one delivery attempt.
	Timeout time.Duration
	// Bound, if set, is the egress bound of a subject (egress.Permits over
	// the store's per-subject bounds): a sink is a destination its
	// function's owner grants, so it must lie within that owner's bound,
	// like the function's own allowed_hosts. A refusal fails the delivery.
	Bound func(subject, rawURL string) error
	// Callback POSTs an asynchronous call's finished record to its
	// callback URL under the operator's callback egress policy; a non-nil
	// error is retried under Policy. Nil fails every callback delivery.
	Callback CallbackFunc
	// Active, if set, reports whether a subject may still have things
	// done on its behalf: a callback of a subject revoked meanwhile is
	// not sent (its delivery fails).
	Active func(subject string) bool
	// PerSubjectCallbacks and PerSubjectCallbackBytes bound one
	// subject's callbacks waiting for delivery (count, and bytes of
	// their bodies); past either, a new callback is refused: it is not
	// sent, counted in edgefaas_callbacks_refused_total and logged.
	PerSubjectCallbacks     int
	PerSubjectCallbackBytes int64
}

// CallbackFunc POSTs body to a completion callback URL; a non-nil error
// is retried.
type CallbackFunc func(ctx context.Context, url string, body []byte) error

// Dispatcher delivers finished activations' results to their sinks: off
// the invocation's path, from the outbox (o/<id> in the store, written
// with the activation's record), retried under Policy, and it keeps each
// record's "sinks" list current. Start recovers what a previous run left.
type Dispatcher struct {
	cfg  Config
	log  *slog.Logger
	mqtt *mqttPool
	wake chan struct{}
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	jobs     map[string]*jobState
	due      []task // sorted by at
	inFlight int
	pending  int64 // bytes of results admitted and not finished
	// perSub counts, per subject, the deliveries in progress (fairness)
	// and the callbacks waiting (their bounds).
	perSub  map[string]int
	cbSub   map[string]*backlog
	stopped bool
	running sync.WaitGroup

	deliveries *prometheus.CounterVec
	refused    prometheus.Counter
	backlog    prometheus.GaugeFunc
}

// backlog is one subject's callbacks waiting for delivery.
type backlog struct {
	n     int
	bytes int64
}

type jobState struct {
	mu   sync.Mutex // serialises the job's store updates
	job  storage.SinkJob
	size int64
	// cb is the callback's share of size while the callback is pending
	// (0 once final, or without one): counted in its subject's backlog.
	cb int64
}

type task struct {
	id string
	i  int
	at time.Time
}

// New returns a Dispatcher; Start runs it.
func New(cfg Config) *Dispatcher {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.MaxPendingBytes <= 0 {
		cfg.MaxPendingBytes = DefaultMaxPendingBytes
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.PerSubjectCallbacks <= 0 {
		cfg.PerSubjectCallbacks = DefaultPerSubjectCallbacks
	}
	if cfg.PerSubjectCallbackBytes <= 0 {
		cfg.PerSubjectCallbackBytes = min(DefaultPerSubjectCallbackBytes, cfg.MaxPendingBytes)
	}
	cfg.Policy = cfg.Policy.withDefaults()
	d := &Dispatcher{cfg: cfg, log: cfg.Log.With("component", "sinks"), mqtt: newMQTTPool(cfg.Dial, cfg.Timeout, mqttIdle),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), jobs: map[string]*jobState{},
		perSub: map[string]int{}, cbSub: map[string]*backlog{}}
	d.deliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edgefaas_sink_deliveries_total",
		Help: "Delivery attempts of results to sinks, by sink type and result (delivered, retry, failed).",
	}, []string{"type", "result"})
	for _, t := range []string{storage.SinkCouchDB, storage.SinkWebhook, storage.SinkMQTT, storage.SinkCallback} {
		for _, r := range []string{"delivered", "retry", "failed"} {
			d.deliveries.WithLabelValues(t, r) // exported from the start, for alerts
		}
	}
	d.refused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "edgefaas_callbacks_refused_total",
		Help: "Completion callbacks not sent because their subject's callback backlog (or the core's) was full.",
	})
	d.backlog = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "edgefaas_sink_backlog_bytes",
		Help: "Bytes of results waiting for delivery to sinks.",
	}, func() float64 { d.mu.Lock(); defer d.mu.Unlock(); return float64(d.pending) })
	return d
}

// Describe implements prometheus.Collector.
func (d *Dispatcher) Describe(ch chan<- *prometheus.Desc) {
	d.deliveries.Describe(ch)
	d.refused.Describe(ch)
	d.backlog.Describe(ch)
}

// Collect implements prometheus.Collector.
func (d *Dispatcher) Collect(ch chan<- prometheus.Metric) {
	d.deliveries.Collect(ch)
	d.refused.Collect(ch)
	d.backlog.Collect(ch)
}

// Admit prepares the delivery of a successful activation's output to the
// sinks of f: it sets rec.Sinks (pending) and returns the outbox job to
// write with the record, or nil when f has no sinks. When the backlog is
// full the deliveries are marked failed in rec and nil is returned. It
// never blocks.
func (d *Dispatcher) Admit(f storage.Function, rec *storage.Activation, output json.RawMessage) *storage.SinkJob {
	if d == nil || len(f.Sinks) == 0 || rec.Status != storage.StatusSuccess {
		return nil
	}
	rec.Sinks = sinkspec.Pending(f.Sinks)
	size := int64(len(output))
	d.mu.Lock()
	full := d.pending+size > d.cfg.MaxPendingBytes
	if !full {
		d.pending += size
	}
	d.mu.Unlock()
	if full {
		for i := range rec.Sinks {
			rec.Sinks[i].Status, rec.Sinks[i].LastError = storage.SinkFailed, "not delivered: the core's sink backlog is full"
			d.deliveries.WithLabelValues(rec.Sinks[i].Type, "failed").Inc()
		}
		d.log.Warn("sink backlog full: result not delivered", "module", f.Module, "function", f.Name, "id", rec.ID)
		return nil
	}
	return &storage.SinkJob{
		ID: rec.ID, Module: f.Module, Function: f.Name, Subject: rec.Subject, Owner: f.Owner, FinishedAt: time.Now().UTC(),
		Result: output, Sinks: f.Sinks, Deliveries: append([]storage.SinkDelivery(nil), rec.Sinks...),
	}
}

// AdmitCallback adds to job (nil: a new one) the delivery of rec, an
// asynchronous call's finished record, to its callback url, and returns
// the job to write with the record: the callback is then durable with it
// (at least once, like the sinks). When the subject's callback backlog,
// or the core's backlog, is full, the callback is refused (counted,
// logged) and job is returned as it was. It never blocks.
func (d *Dispatcher) AdmitCallback(rec storage.Activation, url string, job *storage.SinkJob) *storage.SinkJob {
	if d == nil {
		return job
	}
	body, err := json.Marshal(map[string]any{"data": rec})
	if err != nil {
		d.log.Error("encode a callback body", "id", rec.ID, "err", err)
		return job
	}
	size := int64(len(body))
	d.mu.Lock()
	b := d.cbSub[rec.Subject]
	if b == nil {
		b = &backlog{}
	}
	var full string
	switch {
	case b.n >= d.cfg.PerSubjectCallbacks:
		full = fmt.Sprintf("the subject has %d callbacks waiting", b.n)
	case b.bytes+size > d.cfg.PerSubjectCallbackBytes:
		full = fmt.Sprintf("the subject's waiting callbacks would pass %d bytes", d.cfg.PerSubjectCallbackBytes)
	case d.pending+size > d.cfg.MaxPendingBytes:
		full = fmt.Sprintf("the core's backlog would pass %d bytes", d.cfg.MaxPendingBytes)
	default:
		b.n++
		b.bytes += size
		d.cbSub[rec.Subject] = b
		d.pending += size
	}
	d.mu.Unlock()
	if full != "" {
		d.refused.Inc()
		d.log.Warn("callback refused: backlog full", "id", rec.ID, "subject", rec.Subject, "reason", full)
		return job
	}
	if job == nil {
		job = &storage.SinkJob{ID: rec.ID, Module: rec.Module, Function: rec.Function, Subject: rec.Subject, FinishedAt: time.Now().UTC()}
	}
	job.Callback = body
	job.Sinks = append(job.Sinks, storage.Sink{Type: storage.SinkCallback, Params: storage.SinkParams{URL: url}})
	job.Deliveries = append(job.Deliveries, storage.SinkDelivery{Type: storage.SinkCallback, Target: sinkspec.Target(storage.Sink{Type: storage.SinkCallback, Params: storage.SinkParams{URL: url}}), Status: storage.SinkPending})
	return job
}

// Dropped gives back what Admit reserved for a job whose record was not
// written (the recorder's buffer was full, or the write failed).
func (d *Dispatcher) Dropped(job storage.SinkJob) {
	d.mu.Lock()
	d.pending -= int64(len(job.Result))
	if cb := int64(len(job.Callback)); cb > 0 {
		d.pending -= cb
		d.releaseCallbackLocked(job.Subject, cb)
	}
	d.mu.Unlock()
	d.log.Warn("activation record not written: its sink deliveries are dropped", "module", job.Module, "function", job.Function, "id", job.ID)
}

// Committed schedules jobs whose records and outbox entries are written.
// It never blocks (the recorder's writer calls it).
func (d *Dispatcher) Committed(jobs []storage.SinkJob) {
	now := time.Now()
	d.mu.Lock()
	for _, j := range jobs {
		d.addLocked(j, now)
	}
	d.mu.Unlock()
	d.poke()
}

// releaseCallbackLocked takes a callback of n bytes out of subject's
// backlog.
func (d *Dispatcher) releaseCallbackLocked(subject string, n int64) {
	b := d.cbSub[subject]
	if b == nil {
		return
	}
	b.n--
	b.bytes -= n
	if b.n <= 0 {
		delete(d.cbSub, subject)
	}
}

// callbackPending reports whether j's callback waits for delivery.
func callbackPending(j storage.SinkJob) bool {
	for _, del := range j.Deliveries {
		if del.Type == storage.SinkCallback && del.Status == storage.SinkPending {
			return true
		}
	}
	return false
}

func (d *Dispatcher) addLocked(j storage.SinkJob, now time.Time) {
	st := &jobState{job: j, size: int64(len(j.Result) + len(j.Callback))}
	if callbackPending(j) {
		st.cb = int64(len(j.Callback))
	}
	d.jobs[j.ID] = st
	for i, del := range j.Deliveries {
		if del.Status == storage.SinkPending {
			d.scheduleLocked(task{id: j.ID, i: i, at: now})
		}
	}
}

// scheduleLocked inserts t into the due list, after those due no later.
func (d *Dispatcher) scheduleLocked(t task) {
	k := sort.Search(len(d.due), func(k int) bool { return d.due[k].at.After(t.at) })
	d.due = append(d.due, task{})
	copy(d.due[k+1:], d.due[k:])
	d.due[k] = t
}

// Start recovers the outbox a previous run left (each pending delivery is
// tried again: at least once) and starts delivering.
func (d *Dispatcher) Start() error {
	jobs, err := d.cfg.Store.SinkJobs()
	if err != nil {
		return fmt.Errorf("recover the sink outbox: %w", err)
	}
	now := time.Now()
	var expired []storage.SinkJob
	d.mu.Lock()
	for _, j := range jobs {
		if len(j.Deliveries) != len(j.Sinks) {
			d.log.Error("sink outbox entry is inconsistent; dropped", "id", j.ID)
			continue
		}
		if now.Sub(j.FinishedAt) > d.cfg.Policy.MaxAge {
			for i := range j.Deliveries {
				if j.Deliveries[i].Status == storage.SinkPending {
					j.Deliveries[i].Status = storage.SinkFailed
					j.Deliveries[i].LastError = "not delivered within the core's sink max age: " + j.Deliveries[i].LastError
				}
			}
			expired = append(expired, j)
			continue
		}
		d.pending += int64(len(j.Result) + len(j.Callback))
		if callbackPending(j) {
			b := d.cbSub[j.Subject]
			if b == nil {
				b = &backlog{}
				d.cbSub[j.Subject] = b
			}
			b.n++
			b.bytes += int64(len(j.Callback))
		}
		d.addLocked(j, now)
	}
	d.mu.Unlock()
	for _, j := range expired {
		if err := d.cfg.Store.UpdateSinkJob(j); err != nil {
			return fmt.Errorf("expire sink deliveries of %s: %w", j.ID, err)
		}
	}
	if len(expired) > 0 {
		d.log.Warn("sink deliveries older than the max age given up", "activations", len(expired))
	}
	if len(jobs) > 0 {
		d.log.Info("recovered the sink outbox", "activations", len(jobs))
	}
	go d.loop()
	d.poke()
	return nil
}

// Stop stops delivering and waits (until ctx ends) for attempts in
// progress. What is not delivered stays in the outbox for the next Start.
func (d *Dispatcher) Stop(ctx context.Context) {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	d.stopped = true
	d.mu.Unlock()
	close(d.stop)
	<-d.done
	finished := make(chan struct{})
	go func() { d.running.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-ctx.Done():
		d.log.Warn("stopped with sink deliveries in progress; the next start retries them")
	}
	d.mqtt.close()
}

func (d *Dispatcher) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *Dispatcher) loop() {
	defer close(d.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	reap := time.NewTicker(mqttIdle / 2)
	defer reap.Stop()
	for {
		next := d.startDue(time.Now())
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), time.Millisecond)
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(wait)
		select {
		case <-d.wake:
		case <-timer.C:
		case <-reap.C:
			d.mqtt.reap(time.Now())
		case <-d.stop:
			return
		}
	}
}

// startDue starts the due tasks within Concurrency and returns when the
// next one is due (zero: none waiting, or all slots busy).
//
// Fairness: one subject has at most half the slots (rounded up) at once,
// so a subject whose receiver hangs leaves the others room; its due
// tasks wait their turn in place.
func (d *Dispatcher) startDue(now time.Time) time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	perSubject := (d.cfg.Concurrency + 1) / 2
	keep := d.due[:0]
	var next time.Time
	i := 0
	for ; i < len(d.due) && d.inFlight < d.cfg.Concurrency && !d.stopped; i++ {
		t := d.due[i]
		if t.at.After(now) {
			next = t.at
			break
		}
		st := d.jobs[t.id]
		if st == nil {
			continue
		}
		if d.perSub[st.job.Subject] >= perSubject {
			keep = append(keep, t)
			continue
		}
		d.inFlight++
		d.perSub[st.job.Subject]++
		d.running.Add(1)
		go d.attempt(st, t.i)
	}
	keep = append(keep, d.due[i:]...)
	clear(d.due[len(keep):])
	d.due = keep
	return next
}

func (d *Dispatcher) attempt(st *jobState, i int) {
	defer d.running.Done()
	st.mu.Lock()
	job := st.job // Sinks and Result are never modified: sharing is safe
	st.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.Timeout)
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				d.log.Error("sink delivery panicked", "id", job.ID, "panic", p)
				err = errors.New("the core failed internally while delivering")
			}
		}()
		return d.deliver(ctx, &job, i)
	}()
	cancel()
	now := time.Now()

	st.mu.Lock()
	del := &st.job.Deliveries[i]
	del.Attempts++
	wasPending := st.cb
	log := d.log.With("module", job.Module, "function", job.Function, "id", job.ID, "type", del.Type, "target", del.Target, "attempts", del.Attempts)
	what := "sink delivery"
	if del.Type == storage.SinkCallback {
		what = "callback"
	}
	var retryAt time.Time
	switch {
	case err == nil:
		t := now.UTC()
		del.Status, del.LastError, del.DeliveredAt = storage.SinkDelivered, "", &t
		d.deliveries.WithLabelValues(del.Type, "delivered").Inc()
		log.Debug(what + " delivered")
	default:
		del.LastError = err.Error()
		at, ok := d.cfg.Policy.Retry(err, del.Attempts, job.FinishedAt, now)
		if ok {
			retryAt = at
			d.deliveries.WithLabelValues(del.Type, "retry").Inc()
			log.Info(what+" failed; retrying", "err", err, "retry_in", at.Sub(now).Round(time.Millisecond))
		} else {
			del.Status = storage.SinkFailed
			d.deliveries.WithLabelValues(del.Type, "failed").Inc()
			if del.Type == storage.SinkCallback {
				log.Warn("callback not delivered; giving up", "err", err, "permanent", IsPermanent(err))
			} else {
				log.Warn("sink delivery failed; giving up", "err", err, "permanent", IsPermanent(err))
			}
		}
	}
	snapshot := st.job
	snapshot.Deliveries = append([]storage.SinkDelivery(nil), st.job.Deliveries...)
	werr := d.cfg.Store.UpdateSinkJob(snapshot)
	if del.Type == storage.SinkCallback && del.Status != storage.SinkPending {
		st.cb = 0
	}
	st.mu.Unlock()
	if werr != nil {
		log.Error("could not store a sink delivery's state", "err", werr)
	}

	d.mu.Lock()
	d.inFlight--
	if d.perSub[job.Subject]--; d.perSub[job.Subject] <= 0 {
		delete(d.perSub, job.Subject)
	}
	if wasPending > 0 && job.Deliveries[i].Type == storage.SinkCallback && retryAt.IsZero() {
		d.releaseCallbackLocked(job.Subject, wasPending)
	}
	if !retryAt.IsZero() {
		d.scheduleLocked(task{id: job.ID, i: i, at: retryAt})
	} else if snapshot.Done() {
		delete(d.jobs, job.ID)
		d.pending -= st.size
	}
	d.mu.Unlock()
	d.poke()
}

func clientID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "edgefaas-sink-" + hex.EncodeToString(b)
}
