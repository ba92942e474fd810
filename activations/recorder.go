package activations

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/edgefaas/edgefaas/storage"
)

// Defaults of RecorderConfig, sized for a small machine.
const (
	DefaultRetention  = 24 * time.Hour
	DefaultMaxBytes   = 64 << 20
	DefaultBuffer     = 8192
	DefaultBatchSize  = 512
	DefaultFlushEvery = 2 * time.Millisecond
	DefaultPruneEvery = time.Minute
)

// RecorderConfig configures a Recorder. Store is required.
type RecorderConfig struct {
	Store *storage.Store
	Log   *slog.Logger
	// Metrics, if set, counts every final record by function and status.
	Metrics *Metrics
	// Buffer is how many records may wait for the writer; beyond it a
	// synchronous invocation's record is dropped (and counted), never
	// waited for.
	Buffer int
	// BatchSize bounds the records committed in one pebble batch, and
	// FlushEvery how long the writer waits for more before committing.
	BatchSize  int
	FlushEvery time.Duration
	// Retention deletes finished records older than this; MaxBytes deletes
	// the oldest finished records while all records take more (keys and
	// values); PruneEvery is how often both run.
	Retention  time.Duration
	MaxBytes   int64
	PruneEvery time.Duration
}

// Recorder writes activation records in batches off the request's
// goroutine, and prunes them.
type Recorder struct {
	cfg  RecorderConfig
	in   chan entry
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	changed chan struct{} // closed after each commit, then replaced
	closed  bool
}

type entry struct {
	rec  storage.Activation
	done chan error // non-nil: the writer commits with Sync and answers
}

// ErrClosed means the Recorder was closed.
var ErrClosed = errors.New("activation recorder closed")

// NewRecorder starts the writer goroutine; Close stops it.
func NewRecorder(cfg RecorderConfig) *Recorder {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics(0)
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = DefaultBuffer
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = DefaultFlushEvery
	}
	if cfg.Retention <= 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = DefaultMaxBytes
	}
	if cfg.PruneEvery <= 0 {
		cfg.PruneEvery = DefaultPruneEvery
	}
	r := &Recorder{cfg: cfg, in: make(chan entry, cfg.Buffer), stop: make(chan struct{}), done: make(chan struct{}), changed: make(chan struct{})}
	go r.loop()
	return r
}

// Record queues a record for writing without ever blocking: when the
// buffer is full the record is dropped and counted
// (edgefaas_activation_records_dropped_total). Synchronous invocations use
// it: their answer never waits for the disk.
func (r *Recorder) Record(a storage.Activation) {
	r.cfg.Metrics.observe(a)
	select {
	case r.in <- entry{rec: a}:
	default:
		r.cfg.Metrics.dropped.Inc()
	}
}

// Observe counts a finished invocation in the per-function metrics
// without writing a record: the call sites that keep no record
// (--activation-records=async) still show in the metrics.
func (r *Recorder) Observe(a storage.Activation) {
	r.cfg.Metrics.observe(a)
}

// RecordWait writes a record and waits until it is committed with
// pebble.Sync (batched with others). Asynchronous activations use it: the
// backpressure falls on the async queue, never on synchronous calls.
func (r *Recorder) RecordWait(ctx context.Context, a storage.Activation) error {
	r.cfg.Metrics.observe(a)
	e := entry{rec: a, done: make(chan error, 1)}
	select {
	case r.in <- e:
	case <-r.stop:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-e.done:
		return err
	case <-r.done:
		// The writer drains its channel before it ends.
		select {
		case err := <-e.done:
			return err
		default:
			return ErrClosed
		}
	}
}

// Changed returns a channel closed after the next commit of records, for
// callers that wait for new activations (long polls).
func (r *Recorder) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

// Prune runs retention now; the writer also runs it every PruneEvery.
func (r *Recorder) Prune() (deleted int, err error) {
	deleted, left, err := r.cfg.Store.PruneActivations(time.Now().Add(-r.cfg.Retention), r.cfg.MaxBytes, func(id string) (time.Time, bool) { return IDTime(id) })
	if err != nil {
		r.cfg.Log.Warn("pruning activation records failed", "err", err)
		return deleted, err
	}
	r.cfg.Metrics.pruned.Add(float64(deleted))
	r.cfg.Metrics.bytes.Set(float64(left))
	if deleted > 0 {
		r.cfg.Log.Debug("pruned activation records", "deleted", deleted, "bytes_left", left)
	}
	return deleted, nil
}

// Close writes what is buffered and stops the writer.
func (r *Recorder) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		<-r.done
		return
	}
	r.closed = true
	r.mu.Unlock()
	close(r.stop)
	<-r.done
}

func (r *Recorder) loop() {
	defer close(r.done)
	prune := time.NewTicker(r.cfg.PruneEvery)
	defer prune.Stop()
	r.Prune()
	batch := make([]entry, 0, r.cfg.BatchSize)
	for {
		select {
		case e := <-r.in:
			batch = append(batch[:0], e)
		case <-prune.C:
			r.Prune()
			continue
		case <-r.stop:
			for {
				batch = batch[:0]
				r.drain(&batch)
				if len(batch) == 0 {
					return
				}
				r.write(batch)
			}
		}
		// Batch per BatchSize records or per FlushEvery: one WAL write
		// for many records instead of one per invocation.
		r.drain(&batch)
		if len(batch) < r.cfg.BatchSize {
			r.linger(&batch)
		}
		r.write(batch)
	}
}

// linger adds records arriving within FlushEvery, up to BatchSize.
func (r *Recorder) linger(batch *[]entry) {
	timer := time.NewTimer(r.cfg.FlushEvery)
	defer timer.Stop()
	for len(*batch) < r.cfg.BatchSize {
		select {
		case e := <-r.in:
			*batch = append(*batch, e)
		case <-timer.C:
			return
		case <-r.stop:
			return
		}
	}
}

func (r *Recorder) drain(batch *[]entry) {
	for len(*batch) < r.cfg.BatchSize {
		select {
		case e := <-r.in:
			*batch = append(*batch, e)
		default:
			return
		}
	}
}

func (r *Recorder) write(batch []entry) {
	recs := make([]storage.Activation, len(batch))
	sync := false
	for i, e := range batch {
		recs[i] = e.rec
		sync = sync || e.done != nil
	}
	err := r.cfg.Store.WriteActivations(recs, sync)
	if err != nil {
		r.cfg.Log.Error("writing activation records failed", "records", len(recs), "err", err)
	} else {
		r.cfg.Metrics.written.Add(float64(len(recs)))
	}
	for _, e := range batch {
		if e.done != nil {
			e.done <- err
		}
	}
	r.mu.Lock()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}
