package activations

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// Defaults of RecorderConfig, sized for a small machine.
const (
	DefaultRetention  = 24 * time.Hour
	DefaultMaxBytes   = 64 << 20
	DefaultBuffer     = 8192
	DefaultBatchSize  = 512
	DefaultFlushEvery = 5 * time.Millisecond
	DefaultPruneEvery = time.Minute
	// GroupFlushEvery is FlushEvery in a core group: each batch is an
	// entry of the group's log, which costs every member a write and the
	// leader a round trip whatever its size, so batches are larger.
	GroupFlushEvery = 50 * time.Millisecond
)

// RecorderConfig configures a Recorder. Store is required.
type RecorderConfig struct {
	Store *storage.Store
	Log   *slog.Logger
	// Metrics, if set, counts every final record by function and status.
	Metrics *Metrics
	// Buffer is how many records may wait for the writer; beyond it a
	// synchronous invocation's record is dropped (and counted), never
	// waited for. Asynchronous records are never dropped (the queue bounds
	// them).
	Buffer int
	// BatchSize bounds the records committed in one pebble batch, and
	// FlushEvery how long the writer waits for more before committing
	// (not when an asynchronous record waits for its commit).
	BatchSize  int
	FlushEvery time.Duration
	// Retention deletes finished records older than this; MaxBytes deletes
	// the oldest finished records while all records take more (keys and
	// values); PruneEvery is how often both run.
	Retention  time.Duration
	MaxBytes   int64
	PruneEvery time.Duration
	// Sinks, if set, hears about the sink jobs (outbox entries) written
	// with their records, and about those dropped with them.
	Sinks SinkOutbox
	// Group, in a core group, takes the records of synchronous calls to
	// every member: each batch (of at most LogEntryBytes) is one entry of
	// the group's log, applied to every member's store, this one's
	// included. A batch the log does not take (no majority, a lost
	// leader) is written to Store only, as a single core writes it, and
	// counted (edgefaas_activation_records_unreplicated_total): a lost
	// leader slows records, never calls. Two kinds stay on this core:
	// the records given to RecordWait (the queue committed them through
	// the log already) and records with sink jobs (the outbox is per core,
	// and its deliveries update the record beside it).
	Group RecordLog
}

// RecordLog is a core group's log as the writer uses it
// (replication.Writes).
type RecordLog interface {
	WriteActivations(recs []storage.Activation) error
}

// LogEntryBytes bounds the records of one entry of a group's log (by
// their results, errors and logs): a full batch of large records is
// several entries, not one that every member must hold at once.
const LogEntryBytes = 1 << 20

// SinkOutbox is the sink runtime as the writer sees it (package sinks'
// Dispatcher): both calls must not block.
type SinkOutbox interface {
	// Committed: these jobs and their records are written; deliver them.
	Committed(jobs []storage.SinkJob)
	// Dropped: this job's record was not written; forget it.
	Dropped(job storage.SinkJob)
}

// Recorder writes activation records in batches off the request's
// goroutine, and prunes them.
//
// The per-call part is small on purpose (it runs on every synchronous
// invocation): Record appends the record to a slice under a mutex and, if
// the slice was empty, wakes the writer; no encoding, no channel hand-off
// per record, no allocation beyond the slice's growth. The writer waits
// FlushEvery for more records to join (unless an asynchronous record waits
// for its commit), swaps the slice for its spare, encodes and commits.
type Recorder struct {
	cfg  RecorderConfig
	wake chan struct{} // cap 1: records are pending
	now  chan struct{} // cap 1: a RecordWait waits; do not linger
	stop chan struct{}
	done chan struct{}

	mu      sync.Mutex
	pending []storage.Activation
	spare   []storage.Activation
	waiters []waiter    // RecordWaits among pending, by index
	jobs    []outboxJob // sink jobs of records among pending, by index
	// watches are the long polls' wake-ups, by the function they wait
	// for: a commit closes only those its records match, so a poll on an
	// idle function is not woken (and does not rescan) at every commit.
	watches map[WatchKey]*watchEntry
	closed  bool

	groupRefused bool // the writer's last proposal to Group failed (the writer's alone)
}

// WatchKey names what a long poll waits for: a function (Module and
// Function), any function of a module (Function empty), a function name in
// any module (Module empty), or any record (both empty).
type WatchKey struct{ Module, Function string }

// waiter is a RecordWait's record (pending[i]) and where to answer it;
// the batch holding it is committed with Sync.
type waiter struct {
	i    int
	done chan error
}

// outboxJob is the sink job of pending[i], written in the same batch.
type outboxJob struct {
	i   int
	job storage.SinkJob
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
	r := &Recorder{cfg: cfg, wake: make(chan struct{}, 1), now: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}), watches: map[WatchKey]*watchEntry{},
		pending: make([]storage.Activation, 0, min(cfg.Buffer, 256)), spare: make([]storage.Activation, 0, min(cfg.Buffer, 256))}
	go r.loop()
	return r
}

// Record queues a record for writing without ever blocking: when Buffer
// records already wait the record is dropped and counted
// (edgefaas_activation_records_dropped_total). Synchronous invocations use
// it: their answer never waits for the disk, and their records are best
// effort (committed without fsync; a crash may lose the last ones).
func (r *Recorder) Record(a storage.Activation) { r.RecordWithSinks(a, nil) }

// RecordWithSinks is Record with the outbox entry of the record's sink
// deliveries (nil: none), written in the same batch.
func (r *Recorder) RecordWithSinks(a storage.Activation, job *storage.SinkJob) {
	r.cfg.Metrics.observe(a)
	r.mu.Lock()
	if r.closed || len(r.pending) >= r.cfg.Buffer {
		r.mu.Unlock()
		r.cfg.Metrics.dropped.Inc()
		r.dropped(job)
		return
	}
	if job != nil {
		r.jobs = append(r.jobs, outboxJob{i: len(r.pending), job: *job})
	}
	r.pending = append(r.pending, a)
	first := len(r.pending) == 1
	r.mu.Unlock()
	if first {
		signal(r.wake)
	}
}

// dropped tells the sinks that job's record will not be written.
func (r *Recorder) dropped(job *storage.SinkJob) {
	if job != nil && r.cfg.Sinks != nil {
		r.cfg.Sinks.Dropped(*job)
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
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
// backpressure falls on the async queue (bounded by its own limits), never
// on synchronous calls.
func (r *Recorder) RecordWait(ctx context.Context, a storage.Activation) error {
	return r.RecordWaitWithSinks(ctx, a, nil)
}

// RecordWaitWithSinks is RecordWait with the outbox entry of the record's
// sink deliveries (nil: none), written in the same synced batch.
func (r *Recorder) RecordWaitWithSinks(ctx context.Context, a storage.Activation, job *storage.SinkJob) error {
	r.cfg.Metrics.observe(a)
	done := make(chan error, 1)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.dropped(job)
		return ErrClosed
	}
	if job != nil {
		r.jobs = append(r.jobs, outboxJob{i: len(r.pending), job: *job})
	}
	r.waiters = append(r.waiters, waiter{i: len(r.pending), done: done})
	r.pending = append(r.pending, a)
	r.mu.Unlock()
	signal(r.wake)
	signal(r.now)
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Applied wakes the long polls on records that a core group's log
// applied here (written through another member, or through the log).
func (r *Recorder) Applied(recs []storage.Activation) { r.wakeWatches(recs) }

// Watch registers a long poll's interest in the records k matches; the
// caller waits on the Watcher's C and calls Close when done. A commit
// wakes only the watchers its records match, so a poll on an idle
// function is not woken (and does not rescan) by other functions' calls.
func (r *Recorder) Watch(k WatchKey) *Watcher {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.watches[k]
	if !ok {
		e = &watchEntry{cur: &watchGen{ch: make(chan struct{})}}
		r.watches[k] = e
	}
	e.refs++
	return &Watcher{r: r, k: k, cur: e.cur}
}

// watchEntry is a key's current generation and how many Watchers use it.
type watchEntry struct {
	refs int
	cur  *watchGen
}

// watchGen is one wake-up: ch is closed by the commit of a record the key
// matches, after minID (the oldest such record's id in that commit) and
// next (the key's following generation) are set.
type watchGen struct {
	ch    chan struct{}
	minID string
	next  *watchGen
}

// Watcher is one long poll's registration (Recorder.Watch).
type Watcher struct {
	r   *Recorder
	k   WatchKey
	cur *watchGen
}

// C is closed when a record the watcher's key matches has been committed
// since the watcher was made or since the last Next.
func (w *Watcher) C() <-chan struct{} { return w.cur.ch }

// Next, after C was closed, moves the watcher past every commit so far and
// returns the oldest id among the matching records those commits held:
// a scan down to it sees every record committed since, even one whose id
// is older than records committed before it (ids are taken when a call
// starts, records are written when it ends).
func (w *Watcher) Next() (oldest string) {
	for {
		select {
		case <-w.cur.ch:
		default:
			return oldest
		}
		if oldest == "" || w.cur.minID < oldest {
			oldest = w.cur.minID
		}
		w.cur = w.cur.next
	}
}

// Close ends the registration.
func (w *Watcher) Close() {
	w.r.mu.Lock()
	defer w.r.mu.Unlock()
	if e, ok := w.r.watches[w.k]; ok {
		if e.refs--; e.refs <= 0 {
			delete(w.r.watches, w.k)
		}
	}
}

// wakeWatches wakes the watches recs match: per record, its function's,
// its module's, its name's and the one for any record. The cost is four
// map lookups per record committed, whatever the number of polls.
func (r *Recorder) wakeWatches(recs []storage.Activation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.watches) == 0 {
		return
	}
	var woken []*watchEntry
	for _, a := range recs {
		for _, k := range [...]WatchKey{{a.Module, a.Function}, {a.Module, ""}, {"", a.Function}, {}} {
			e, ok := r.watches[k]
			if !ok {
				continue
			}
			if e.cur.next == nil {
				e.cur.next = &watchGen{ch: make(chan struct{})}
				e.cur.minID = a.ID
				woken = append(woken, e)
			} else if a.ID < e.cur.minID {
				e.cur.minID = a.ID
			}
		}
	}
	for _, e := range woken {
		close(e.cur.ch)
		e.cur = e.cur.next
	}
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

// Close writes what is buffered and stops the writer. Records given after
// Close are dropped (RecordWait answers ErrClosed).
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
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	for {
		select {
		case <-r.wake:
		case <-prune.C:
			r.Prune()
			continue
		case <-r.stop:
			r.flush() // Record and RecordWait refuse new records once closed
			return
		}
		// Let FlushEvery's records join: one commit for many records
		// instead of one per invocation, unless one waits for its commit.
		select {
		case <-r.now:
		default:
			linger.Reset(r.cfg.FlushEvery)
			select {
			case <-linger.C:
			case <-r.now:
				linger.Stop()
			case <-r.stop:
				linger.Stop()
			}
		}
		r.flush()
	}
}

// flush writes every pending record, in batches of BatchSize.
func (r *Recorder) flush() {
	r.mu.Lock()
	batch, waiters, jobs := r.pending, r.waiters, r.jobs
	r.pending, r.waiters, r.jobs = r.spare[:0], nil, nil
	r.mu.Unlock()
	for i := 0; i < len(batch); i += r.cfg.BatchSize {
		end := min(i+r.cfg.BatchSize, len(batch))
		var answer []waiter
		for len(waiters) > 0 && waiters[0].i < end {
			answer, waiters = append(answer, waiters[0]), waiters[1:]
		}
		var outbox []storage.SinkJob
		for len(jobs) > 0 && jobs[0].i < end {
			outbox, jobs = append(outbox, jobs[0].job), jobs[1:]
		}
		r.write(i, batch[i:end], answer, outbox)
	}
	clear(batch) // drop the references to results and logs
	r.mu.Lock()
	r.spare = batch[:0]
	r.mu.Unlock()
}

// write commits recs (pending[from:from+len(recs)]) with the waiters and
// sink jobs among them.
func (r *Recorder) write(from int, recs []storage.Activation, waiters []waiter, jobs []storage.SinkJob) {
	all := recs
	if r.cfg.Group != nil {
		recs = r.writeThroughLog(from, recs, waiters, jobs)
	}
	err := r.cfg.Store.WriteActivationsWithSinks(recs, jobs, len(waiters) > 0)
	switch {
	case errors.Is(err, storage.ErrDiskFull):
		// Refused on a full disk: the store logs that once and counts it;
		// a line per batch would flood the log for as long as it lasts.
	case err != nil:
		r.cfg.Log.Error("writing activation records failed", "records", len(recs), "err", err)
	default:
		r.cfg.Metrics.written.Add(float64(len(recs)))
	}
	if len(jobs) > 0 && r.cfg.Sinks != nil {
		if err != nil {
			for _, j := range jobs {
				r.cfg.Sinks.Dropped(j)
			}
		} else {
			r.cfg.Sinks.Committed(jobs)
		}
	}
	for _, w := range waiters {
		w.done <- err
	}
	r.wakeWatches(all)
}

// writeThroughLog proposes the records of synchronous calls among recs
// (pending[from:]) to the group's log, and returns those left to write
// here: the waiters' and those with sink jobs, and any the log refused.
func (r *Recorder) writeThroughLog(from int, recs []storage.Activation, waiters []waiter, jobs []storage.SinkJob) []storage.Activation {
	var here map[string]bool // ids written here only
	if len(waiters)+len(jobs) > 0 {
		here = make(map[string]bool, len(waiters)+len(jobs))
	}
	for _, w := range waiters {
		here[recs[w.i-from].ID] = true
	}
	for _, j := range jobs {
		here[j.ID] = true
	}
	var local, entry []storage.Activation
	size := 0
	propose := func() {
		if len(entry) == 0 {
			return
		}
		err := r.cfg.Group.WriteActivations(entry)
		switch {
		case err != nil && !r.groupRefused:
			r.cfg.Log.Warn("the core group's log did not take records of synchronous calls; keeping them on this core only until it does", "records", len(entry), "err", err)
		case err == nil && r.groupRefused:
			r.cfg.Log.Info("the core group's log takes records of synchronous calls again")
		}
		r.groupRefused = err != nil
		if err != nil {
			local = append(local, entry...)
			r.cfg.Metrics.local.Add(float64(len(entry)))
		} else {
			r.cfg.Metrics.written.Add(float64(len(entry)))
		}
		entry, size = nil, 0
	}
	for _, a := range recs {
		if here[a.ID] {
			local = append(local, a)
			continue
		}
		n := storage.ApproxBytes(a)
		if size+n > LogEntryBytes {
			propose()
		}
		entry, size = append(entry, a), size+n
	}
	propose()
	return local
}
