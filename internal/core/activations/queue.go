package activations

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// Defaults of QueueConfig.
const (
	DefaultMaxQueued = 10000
	// DefaultMaxQueuedBytes and DefaultPerSubjectQueuedBytes bound the
	// args of the calls queued or running (on disk, not in memory): in
	// total, a share of a small machine's disk; per subject, a quarter of
	// that, so one tenant's flood leaves room for the others.
	DefaultMaxQueuedBytes        = 1 << 30
	DefaultPerSubjectQueuedBytes = DefaultMaxQueuedBytes / 4
	// DefaultMaxInFlightBytes bounds the args of the calls running at
	// once, which are in memory while they run.
	DefaultMaxInFlightBytes = 32 << 20
	DefaultMaxInFlight      = 64
	DefaultPerFunction      = 16
	DefaultPerSubject       = 32
	DefaultMaxWait          = time.Hour
	DefaultLostRetries      = 3
	defaultRetryBackoff     = 100 * time.Millisecond
	maxRetryBackoff         = 5 * time.Second
)

// ErrFull means the queue holds MaxQueued activations, or its calls' args
// would pass MaxQueuedBytes or the subject's PerSubjectQueuedBytes: the
// submit is refused (HTTP 429) and nothing was stored. Refusals wrap it
// with which bound was reached.
var ErrFull = errors.New("the asynchronous queue is full")

// Outcome is what running one queued activation gave.
type Outcome struct {
	// Record is the activation with its final fields set (status, worker,
	// times, result, logs). StatusBusy and StatusNoWorker mean nothing ran:
	// the queue runs it again later (until MaxWait). StatusLost means it may
	// have run: it runs again only when Idempotent.
	Record storage.Activation
	// Idempotent is the function's metadata "idempotent".
	Idempotent bool
	// Sinks, for a success of a function with sinks, is the outbox entry
	// written with the final record (see Recorder.RecordWaitWithSinks).
	Sinks *storage.SinkJob
	// finished: with a Journal, another leader ended the call already.
	finished bool
}

// RunFunc runs one queued activation through the platform's invoker. The
// call comes without its args: args reads them, once, and should be
// called only when a worker is there to take them (a call no worker can
// take is tried again and again, its args left on disk).
type RunFunc func(ctx context.Context, rec storage.Activation, call storage.QueuedCall, args ArgsFunc) Outcome

// ArgsFunc reads a queued call's args from the store (once: later calls
// return the first answer).
type ArgsFunc func() (json.RawMessage, error)

// CallbackOutbox admits completion callbacks into the durable outbox
// (package sinks' Dispatcher): AdmitCallback adds the delivery of rec to
// url to job (nil: a new one) and returns the job to write with the
// record, or job as it was when the callback is refused. The recorder
// reports the jobs it writes; Queue.Start reports those of the calls it
// ends lost (Committed, Dropped). No call may block.
type CallbackOutbox interface {
	AdmitCallback(rec storage.Activation, url string, job *storage.SinkJob) *storage.SinkJob
	SinkOutbox
}

// QueueConfig configures a Queue. Store, Recorder and Run are required.
type QueueConfig struct {
	Store    *storage.Store
	Recorder *Recorder
	Run      RunFunc
	Log      *slog.Logger
	// Callbacks takes the completion callbacks of finished calls: they
	// are written to the outbox with the final record, in the same
	// synced batch, and delivered from there by a bounded pool. Nil
	// drops them (logged).
	Callbacks CallbackOutbox
	// MaxQueued bounds the activations queued or running; MaxInFlight the
	// ones running; PerFunction and PerSubject the ones running for one
	// function and for one subject.
	MaxQueued, MaxInFlight, PerFunction, PerSubject int
	// MaxQueuedBytes bounds the args of the calls queued or running, in
	// total; PerSubjectQueuedBytes those of one subject. The args stay on
	// disk until their call runs: the bounds are about the disk.
	MaxQueuedBytes, PerSubjectQueuedBytes int64
	// QueuedBytesQuota, if set, returns a subject's own bound on the args
	// of its calls queued or running (its quota's QueuedBytes), lower
	// than PerSubjectQueuedBytes or not; ok false: none (an admin).
	QueuedBytesQuota func(subject string) (limit int64, ok bool, err error)
	// MaxInFlightBytes bounds the args of the calls running at once (read
	// into memory for their run); a call larger than it runs alone.
	MaxInFlightBytes int64
	// MaxWait is how long an activation that could not start (no worker,
	// all busy) keeps being retried before it ends with that status.
	MaxWait time.Duration
	// LostRetries bounds the reruns of an idempotent function's lost call.
	LostRetries int
	// Journal, in a core group, commits the queue's writes through the
	// group's log (see Journal); nil: a single core, which writes to
	// Store directly.
	Journal Journal
}

// Journal commits a core group's queue writes through the group's log
// (replication.Writes): a call is acknowledged once the group holds it,
// and each member's queue follows what the log applies (Enqueued,
// Written) rather than what its own API took. Only the leader
// dispatches (Lead); a new leader runs every call its store holds queued
// or running, so a call runs at least once whichever core took it.
type Journal interface {
	EnqueueActivation(rec storage.Activation, call storage.QueuedCall) error
	WriteActivations(recs []storage.Activation) error
}

// Queue runs asynchronous activations: oldest first, bounded in flight per
// function and per subject, durable across restarts (see Start).
type Queue struct {
	cfg  QueueConfig
	log  *slog.Logger
	wake chan struct{}

	mu       sync.Mutex
	waiting  []*job            // sorted by ID: oldest first
	runs     map[*job]struct{} // the calls running
	reserved int               // submits being committed
	inFlight int
	perFn    map[string]int
	perSub   map[string]int
	bytes    int64            // args of the calls queued, running or being committed
	runBytes int64            // args of the calls running
	subBytes map[string]int64 // the same per subject
	stopped  bool
	leading  bool // with a Journal: this core dispatches
	running  sync.WaitGroup
	stop     chan struct{}
	done     chan struct{}

	attempts atomic.Int64 // runs of queued calls, those that found no worker too
	argsRead atomic.Int64 // queued calls' args read from the store
}

// job is a queued call without its args, which stay on disk until it
// runs (Store.QueuedArgs): the queue holds an index, not the payloads.
type job struct {
	rec       storage.Activation
	call      storage.QueuedCall
	argsBytes int64
	notBefore time.Time
	retries   int
	// While it runs (under Queue.mu): cancel ends its run's context, and
	// canceled, once set by Cancel, is the reason it ends StatusCanceled.
	cancel   context.CancelFunc
	canceled string
}

func (j *job) fnKey() string { return j.call.Module + "/" + j.call.Function }

// NewQueue returns a stopped queue; Start recovers and runs it.
func NewQueue(cfg QueueConfig) *Queue {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.MaxQueued, DefaultMaxQueued)
	def(&cfg.MaxInFlight, DefaultMaxInFlight)
	def(&cfg.PerFunction, DefaultPerFunction)
	def(&cfg.PerSubject, DefaultPerSubject)
	def(&cfg.LostRetries, DefaultLostRetries)
	if cfg.MaxQueuedBytes <= 0 {
		cfg.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if cfg.PerSubjectQueuedBytes <= 0 {
		cfg.PerSubjectQueuedBytes = min(DefaultPerSubjectQueuedBytes, cfg.MaxQueuedBytes)
	}
	if cfg.MaxInFlightBytes <= 0 {
		cfg.MaxInFlightBytes = DefaultMaxInFlightBytes
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	q := &Queue{cfg: cfg, log: cfg.Log, wake: make(chan struct{}, 1), perFn: map[string]int{}, perSub: map[string]int{}, subBytes: map[string]int64{}, runs: map[*job]struct{}{},
		stop: make(chan struct{}), done: make(chan struct{})}
	if cfg.Recorder != nil {
		cfg.Recorder.cfg.Metrics.setQueue(q)
	}
	return q
}

// Start recovers the activations a previous run left and starts
// dispatching. Queued ones run again (nothing had started them). Running
// ones may have run: they end `lost`, unless their function is idempotent,
// then they run again.
func (q *Queue) Start() error {
	left, err := q.cfg.Store.QueuedActivations()
	if err != nil {
		return fmt.Errorf("recover the asynchronous queue: %w", err)
	}
	if q.cfg.Journal != nil {
		return q.startFollowing(left)
	}
	var lost []storage.Activation
	var lostJobs []storage.SinkJob
	requeued := 0
	for _, qa := range left {
		j := &job{rec: qa.Record, call: qa.Call, argsBytes: qa.ArgsBytes}
		if qa.Record.Status == storage.StatusRunning {
			f, ferr := q.cfg.Store.GetFunction(qa.Call.Module, qa.Call.Function)
			if ferr != nil || !f.Metadata.Idempotent || qa.Record.Attempts > q.cfg.LostRetries {
				rec := qa.Record
				rec.Status = storage.StatusLost
				rec.Error = "the core stopped while this call was running; it may or may not have run"
				lost = append(lost, rec)
				// Its caller hears of it like of any end: by its callback.
				if qa.Call.Callback != "" && q.cfg.Callbacks != nil {
					if job := q.cfg.Callbacks.AdmitCallback(rec, qa.Call.Callback, nil); job != nil {
						lostJobs = append(lostJobs, *job)
					}
				}
				continue
			}
		}
		j.rec.Status = storage.StatusQueued
		q.waiting = append(q.waiting, j)
		q.addBytes(j.call.Subject, j.argsBytes)
		requeued++
	}
	err = q.cfg.Store.WriteActivationsWithSinks(lost, lostJobs, true)
	if err != nil {
		for _, j := range lostJobs {
			q.cfg.Callbacks.Dropped(j)
		}
	} else if len(lostJobs) > 0 {
		q.cfg.Callbacks.Committed(lostJobs)
	}
	switch {
	case errors.Is(err, storage.ErrDiskFull):
		// The core must start on a full disk: the records stay as they
		// are (their calls are not requeued) and the next start marks them.
		q.log.Warn("could not mark lost asynchronous activations: the disk is full", "count", len(lost))
		lost = nil
	case err != nil:
		return fmt.Errorf("mark lost activations: %w", err)
	}
	for _, rec := range lost {
		q.cfg.Recorder.cfg.Metrics.observe(rec)
	}
	sort.Slice(q.waiting, func(a, b int) bool { return q.waiting[a].rec.ID < q.waiting[b].rec.ID })
	if len(left) > 0 {
		q.log.Info("recovered the asynchronous queue", "requeued", requeued, "lost", len(lost))
	}
	go q.loop()
	q.poke()
	return nil
}

// startFollowing is Start for a queue with a Journal: every call left
// queued or running waits to be run again (at least once: the leader
// that ran it may have been lost before its end was committed), merged
// with the calls the log applied since the queue was made.
func (q *Queue) startFollowing(left []storage.QueuedActivation) error {
	q.followAll(left)
	if len(left) > 0 {
		q.log.Info("recovered the group's asynchronous queue", "queued", len(left))
	}
	go q.loop()
	q.poke()
	return nil
}

// followAll indexes the calls a store holds queued or running, as
// queued: their leader may have been lost before it ended them.
func (q *Queue) followAll(left []storage.QueuedActivation) {
	for _, qa := range left {
		rec := qa.Record
		rec.Status, rec.StartedAt, rec.Worker = storage.StatusQueued, nil, ""
		q.follow(&job{rec: rec, call: qa.Call, argsBytes: qa.ArgsBytes})
	}
}

// follow indexes j unless the queue holds its call already.
func (q *Queue) follow(j *job) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.holdsLocked(j.rec.ID) {
		return
	}
	q.insertLocked(j)
	q.addBytes(j.call.Subject, j.argsBytes)
}

// holdsLocked reports whether the call id is waiting or running.
func (q *Queue) holdsLocked(id string) bool {
	if i := sort.Search(len(q.waiting), func(i int) bool { return q.waiting[i].rec.ID >= id }); i < len(q.waiting) && q.waiting[i].rec.ID == id {
		return true
	}
	for j := range q.runs {
		if j.rec.ID == id {
			return true
		}
	}
	return false
}

// Enqueued tells a queue with a Journal that the log applied a call's
// enqueue, on whichever core took it: it is indexed (without its args,
// which stay on disk) for the leader to run.
func (q *Queue) Enqueued(rec storage.Activation, call storage.QueuedCall) {
	n := int64(len(call.Args))
	call.Args = nil
	q.follow(&job{rec: rec, call: call, argsBytes: n})
	q.poke()
}

// Written tells a queue with a Journal that the log applied records: a
// finished call leaves the index (the leader, or a later one, ran it); a
// call marked running or requeued keeps its record's attempts.
func (q *Queue) Written(recs []storage.Activation) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, rec := range recs {
		if !rec.Async {
			continue
		}
		i := sort.Search(len(q.waiting), func(i int) bool { return q.waiting[i].rec.ID >= rec.ID })
		if i == len(q.waiting) || q.waiting[i].rec.ID != rec.ID {
			continue
		}
		j := q.waiting[i]
		if storage.FinalStatus(rec.Status) {
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			q.addBytes(j.call.Subject, -j.argsBytes)
			continue
		}
		j.rec.Attempts = rec.Attempts
	}
}

// Lead makes a queue with a Journal dispatch while ctx lasts: the group's
// leader runs the calls, the other members only index them. It first
// indexes what the store holds queued and the index lacks (a snapshot
// the member restored replaced its store, not its index); a call the
// index holds that has ended since is dropped when it is picked (its
// args are gone).
func (q *Queue) Lead(ctx context.Context) {
	left, err := q.cfg.Store.QueuedActivations()
	if err != nil {
		q.log.Error("could not read the queued calls on leading the group; dispatching those indexed", "err", err)
	}
	q.followAll(left)
	q.mu.Lock()
	q.leading = true
	q.mu.Unlock()
	q.poke()
	<-ctx.Done()
	q.mu.Lock()
	q.leading = false
	q.mu.Unlock()
}

// Submit queues an activation; it returns once the record and the call are
// committed with pebble.Sync (ErrFull when the queue is full).
func (q *Queue) Submit(rec storage.Activation, call storage.QueuedCall) error {
	return q.SubmitWith(rec, call, nil)
}

// SubmitWith is Submit with the commit done by commit (given the record
// with its queued status), which must store the record and the call in
// one synced batch, and may write more in it: a trigger's cron state is
// committed with its tick's activation. nil means
// Store.EnqueueActivation. An error from commit is returned as it is and
// nothing is queued.
func (q *Queue) SubmitWith(rec storage.Activation, call storage.QueuedCall, commit func(storage.Activation, storage.QueuedCall) error) error {
	switch {
	case commit != nil:
	case q.cfg.Journal != nil:
		commit = q.cfg.Journal.EnqueueActivation
	default:
		commit = q.cfg.Store.EnqueueActivation
	}
	q.mu.Lock()
	if q.stopped {
		q.mu.Unlock()
		return ErrClosed
	}
	n := int64(len(call.Args))
	if err := q.admitLocked(call.Subject, n); err != nil {
		q.mu.Unlock()
		return err
	}
	q.reserved++
	q.addBytes(call.Subject, n)
	q.mu.Unlock()
	rec.Status, rec.Async = storage.StatusQueued, true
	err := commit(rec, call)
	q.mu.Lock()
	q.reserved--
	if err == nil && q.cfg.Journal == nil {
		index := call
		index.Args = nil
		q.insertLocked(&job{rec: rec, call: index, argsBytes: n})
	} else {
		// Refused; or committed through the group's log, whose apply on
		// this core indexes it (Enqueued) as it does a call another core
		// took.
		q.addBytes(call.Subject, -n)
	}
	q.mu.Unlock()
	if err == nil {
		q.poke()
	}
	return err
}

// admitLocked refuses a call of n args bytes for subject that a bound
// leaves no room for.
func (q *Queue) admitLocked(subject string, n int64) error {
	switch {
	case len(q.waiting)+q.inFlight+q.reserved >= q.cfg.MaxQueued:
		return fmt.Errorf("%w: %d calls", ErrFull, q.cfg.MaxQueued)
	case q.bytes+n > q.cfg.MaxQueuedBytes:
		return fmt.Errorf("%w: the queued calls' args would pass %d bytes", ErrFull, q.cfg.MaxQueuedBytes)
	case q.subBytes[subject]+n > q.cfg.PerSubjectQueuedBytes:
		return fmt.Errorf("%w: your queued calls' args would pass %d bytes", ErrFull, q.cfg.PerSubjectQueuedBytes)
	}
	if q.cfg.QueuedBytesQuota == nil {
		return nil
	}
	limit, ok, err := q.cfg.QueuedBytesQuota(subject)
	if err != nil {
		return fmt.Errorf("queued bytes quota of %q: %w", subject, err)
	}
	if would := q.subBytes[subject] + n; ok && would > limit {
		// Both: a full queue (429, the calls drain) and a quota, named.
		return fmt.Errorf("%w: %w", ErrFull, &storage.QuotaError{Subject: subject, Quota: "queued_bytes", Limit: limit, Would: would})
	}
	return nil
}

// addBytes counts n args bytes (negative: gives them back) for subject.
func (q *Queue) addBytes(subject string, n int64) {
	q.bytes += n
	if q.subBytes[subject] += n; q.subBytes[subject] <= 0 {
		delete(q.subBytes, subject)
	}
}

func (q *Queue) insertLocked(j *job) {
	i := sort.Search(len(q.waiting), func(i int) bool { return q.waiting[i].rec.ID > j.rec.ID })
	q.waiting = append(q.waiting, nil)
	copy(q.waiting[i+1:], q.waiting[i:])
	q.waiting[i] = j
}

// argsOf returns the ArgsFunc of j's run.
func (q *Queue) argsOf(j *job) ArgsFunc {
	var (
		once sync.Once
		args json.RawMessage
		err  error
	)
	return func() (json.RawMessage, error) {
		once.Do(func() {
			q.argsRead.Add(1)
			args, err = q.cfg.Store.QueuedArgs(j.rec.ID)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				q.log.Error("could not read a queued call's args", "id", j.rec.ID, "module", j.call.Module, "function", j.call.Function, "err", err)
			}
		})
		return args, err
	}
}

// Attempts is how many times a queued call was run, or tried and found no
// worker free or able to take it.
func (q *Queue) Attempts() int64 { return q.attempts.Load() }

// ArgsRead is how many times a queued call's args were read from the
// store.
func (q *Queue) ArgsRead() int64 { return q.argsRead.Load() }

// Depth is the number of activations queued or running.
func (q *Queue) Depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting) + q.inFlight
}

// OldestAge is how long the oldest waiting activation has been queued.
func (q *Queue) OldestAge() time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.waiting) == 0 {
		return 0
	}
	return time.Since(q.waiting[0].rec.QueuedAt)
}

// Stop stops dispatching and waits (until ctx ends) for the running
// activations. Activations still running when ctx ends are
// recovered (lost or rerun) by the next Start.
func (q *Queue) Stop(ctx context.Context) {
	q.mu.Lock()
	if q.stopped {
		q.mu.Unlock()
		return
	}
	q.stopped = true
	q.mu.Unlock()
	close(q.stop)
	<-q.done
	finished := make(chan struct{})
	go func() { q.running.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-ctx.Done():
		q.log.Warn("stopped with asynchronous activations still running; the next start recovers them")
	}
}

func (q *Queue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *Queue) loop() {
	defer close(q.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		batch, next := q.pick(time.Now())
		if len(batch) > 0 {
			q.start(batch)
			continue // more may be runnable
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(time.Until(next), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-q.wake:
		case <-timer.C:
		case <-q.stop:
			return
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// pick takes the oldest runnable activations within the limits, and
// returns the earliest time a waiting one becomes runnable by its backoff.
func (q *Queue) pick(now time.Time) (batch []*job, next time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.stopped || q.cfg.Journal != nil && !q.leading {
		return nil, time.Time{}
	}
	keep := q.waiting[:0]
	bytesHeld := false
	for i, j := range q.waiting {
		if q.inFlight >= q.cfg.MaxInFlight {
			keep = append(keep, q.waiting[i:]...)
			break
		}
		switch {
		case j.notBefore.After(now):
			if next.IsZero() || j.notBefore.Before(next) {
				next = j.notBefore
			}
		case q.perFn[j.fnKey()] >= q.cfg.PerFunction, q.perSub[j.call.Subject] >= q.cfg.PerSubject:
		case bytesHeld || q.inFlight > 0 && q.runBytes+j.argsBytes > q.cfg.MaxInFlightBytes:
			// First come first served by bytes: once a call waits for
			// room, younger ones do not take it, or a large call could
			// wait forever behind a stream of small ones.
			bytesHeld = true
		default:
			q.inFlight++
			q.runBytes += j.argsBytes
			q.perFn[j.fnKey()]++
			q.perSub[j.call.Subject]++
			q.running.Add(1)
			j.cancel, j.canceled = nil, ""
			q.runs[j] = struct{}{}
			batch = append(batch, j)
			continue
		}
		keep = append(keep, j)
	}
	clear(q.waiting[len(keep):])
	q.waiting = keep
	return batch, next
}

// start marks a batch running in one synced commit, then runs each.
func (q *Queue) start(batch []*job) {
	now := time.Now().UTC()
	recs := make([]storage.Activation, len(batch))
	for i, j := range batch {
		j.rec.Status, j.rec.StartedAt = storage.StatusRunning, &now
		j.rec.Attempts++
		recs[i] = j.rec
	}
	if err := q.writeRecords(recs, true); err != nil {
		// Nothing started: put them back and retry after a pause. A full
		// disk is logged by the store, once.
		if !errors.Is(err, storage.ErrDiskFull) {
			q.log.Error("could not mark asynchronous activations running", "count", len(batch), "err", err)
		}
		for _, j := range batch {
			j.rec.Status, j.rec.StartedAt = storage.StatusQueued, nil
			j.rec.Attempts--
			j.notBefore = time.Now().Add(time.Second)
			q.release(j, true)
		}
		return
	}
	for _, j := range batch {
		go q.run(j)
	}
}

// release gives back j's in-flight slot, and requeues it if asked.
func (q *Queue) release(j *job, requeue bool) {
	q.mu.Lock()
	delete(q.runs, j)
	q.inFlight--
	q.runBytes -= j.argsBytes
	if q.perFn[j.fnKey()]--; q.perFn[j.fnKey()] <= 0 {
		delete(q.perFn, j.fnKey())
	}
	if q.perSub[j.call.Subject]--; q.perSub[j.call.Subject] <= 0 {
		delete(q.perSub, j.call.Subject)
	}
	if requeue {
		q.insertLocked(j)
	} else {
		q.addBytes(j.call.Subject, -j.argsBytes)
	}
	q.mu.Unlock()
	q.running.Done()
	q.poke()
}

func (q *Queue) run(j *job) {
	var out Outcome
	func() {
		defer func() {
			if p := recover(); p != nil {
				q.log.Error("asynchronous activation panicked", "id", j.rec.ID, "panic", p)
				out = Outcome{Record: j.rec}
				out.Record.Status, out.Record.Error = storage.StatusRuntimeError, "the core failed internally while running this call"
			}
		}()
		q.mu.Lock()
		canceled := j.canceled != ""
		q.mu.Unlock()
		if canceled { // between pick and run: it does not start
			out = Outcome{Record: j.rec}
			return
		}
		// The args are read from disk for the run only, once a worker can
		// take it: a call no worker can take is tried until MaxWait, and
		// reading its args at every try made the core decode them over
		// and over (4 MiB calls: hundreds of MiB a second).
		q.attempts.Add(1)
		args := q.argsOf(j)
		if q.cfg.Journal != nil {
			// A call an earlier leader finished has its end committed and
			// its args deleted: read them first to know.
			_, err := args()
			if errors.Is(err, storage.ErrNotFound) {
				out = Outcome{Record: j.rec, finished: true}
				return
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		q.mu.Lock()
		j.cancel = cancel
		if j.canceled != "" {
			cancel()
		}
		q.mu.Unlock()
		out = q.cfg.Run(ctx, j.rec, j.call, args)
	}()
	if out.finished {
		q.release(j, false)
		return
	}
	rec := out.Record
	rec.ID, rec.Async, rec.Attempts, rec.QueuedAt = j.rec.ID, true, j.rec.Attempts, j.rec.QueuedAt
	q.mu.Lock()
	reason := j.canceled
	j.cancel = nil
	q.mu.Unlock()
	if reason != "" {
		// Canceled while it ran: whatever the run gave, it ends here, and
		// nothing goes out for it (sinks, callback).
		rec.Status, rec.Error, rec.Result = storage.StatusCanceled, reason, nil
		out.Sinks = nil
	}
	retry := false
	switch rec.Status {
	case storage.StatusBusy, storage.StatusNoWorker:
		// Nothing ran: try again later, oldest first as before.
		if time.Since(rec.QueuedAt) < q.cfg.MaxWait {
			retry = true
			j.retries++
			j.notBefore = time.Now().Add(backoff(defaultRetryBackoff, j.retries, maxRetryBackoff))
		}
	case storage.StatusLost:
		if out.Idempotent && rec.Attempts <= q.cfg.LostRetries {
			retry = true
			j.notBefore = time.Now()
		}
	}
	if retry {
		j.rec = rec
		j.rec.Status, j.rec.StartedAt, j.rec.Worker = storage.StatusQueued, nil, ""
		// Not synced: if the core dies now, the record says running and
		// the restart decides (lost, or rerun when idempotent).
		if err := q.writeRecords([]storage.Activation{j.rec}, false); err != nil {
			q.log.Warn("could not requeue an asynchronous activation", "id", rec.ID, "err", err)
		}
		q.release(j, true)
		return
	}
	if out.Sinks != nil {
		out.Sinks.ID = rec.ID
	}
	if j.call.Callback != "" && rec.Status != storage.StatusCanceled {
		if q.cfg.Callbacks == nil {
			q.log.Warn("activation has a callback but the core has no callback outbox", "id", rec.ID)
		} else {
			out.Sinks = q.cfg.Callbacks.AdmitCallback(rec, j.call.Callback, out.Sinks)
		}
	}
	if q.cfg.Journal != nil {
		q.finishThroughLog(j, rec, out.Sinks)
		return
	}
	if err := q.cfg.Recorder.RecordWaitWithSinks(context.Background(), rec, out.Sinks); err != nil {
		q.log.Error("could not write a finished asynchronous activation; a restart will recover it", "id", rec.ID, "err", err)
	}
	q.release(j, false)
}

// finishThroughLog commits a call's end through the group's log. The
// outbox entry of its sinks and callback stays on this core (the outbox
// is per core): written once the end is committed, and delivered from
// here. An end the group did not take requeues the call: it runs again
// (at least once).
func (q *Queue) finishThroughLog(j *job, rec storage.Activation, sinks *storage.SinkJob) {
	if err := q.cfg.Journal.WriteActivations([]storage.Activation{rec}); err != nil {
		q.log.Warn("could not commit a finished asynchronous activation through the group; it runs again", "id", rec.ID, "err", err)
		if sinks != nil && q.cfg.Callbacks != nil {
			q.cfg.Callbacks.Dropped(*sinks)
		}
		j.rec.Status, j.rec.StartedAt, j.rec.Worker = storage.StatusQueued, nil, ""
		j.notBefore = time.Now().Add(time.Second)
		q.release(j, true)
		return
	}
	if sinks == nil {
		q.cfg.Recorder.Observe(rec)
	} else if err := q.cfg.Recorder.RecordWaitWithSinks(context.Background(), rec, sinks); err != nil {
		// The record, committed, is written again here with the entry.
		q.log.Error("could not write the outbox entry of a finished asynchronous activation", "id", rec.ID, "err", err)
	}
	q.release(j, false)
}

// writeRecords writes the queue's records: through the group's log with
// a Journal (synced, as a log entry is), else to the store.
func (q *Queue) writeRecords(recs []storage.Activation, sync bool) error {
	if q.cfg.Journal != nil {
		return q.cfg.Journal.WriteActivations(recs)
	}
	return q.cfg.Store.WriteActivations(recs, sync)
}

// Cancel ends every call queued or running for which match holds, with
// StatusCanceled and reason as its error: the waiting ones at once, in one
// synced commit (their records final, their q/ entries gone); the running
// ones have their run's context canceled and end so when it returns. No
// callback or sink goes out for a canceled call. It returns how many
// calls it ended or marked.
func (q *Queue) Cancel(match func(storage.QueuedCall) bool, reason string) (int, error) {
	q.mu.Lock()
	var gone []*job
	keep := q.waiting[:0]
	for _, j := range q.waiting {
		if match(j.call) {
			gone = append(gone, j)
			continue
		}
		keep = append(keep, j)
	}
	clear(q.waiting[len(keep):])
	q.waiting = keep
	marked := 0
	for j := range q.runs {
		if j.canceled == "" && match(j.call) {
			j.canceled = reason
			if j.cancel != nil {
				j.cancel()
			}
			marked++
		}
	}
	// Counted out before the commit: a failed commit leaves them on disk,
	// where the next start finds them (and ends them, see RunFunc).
	for _, j := range gone {
		q.addBytes(j.call.Subject, -j.argsBytes)
	}
	q.mu.Unlock()
	if len(gone) == 0 {
		return marked, nil
	}
	now := time.Now().UTC()
	recs := make([]storage.Activation, len(gone))
	for i, j := range gone {
		rec := j.rec
		rec.Status, rec.Error, rec.Async, rec.StartedAt, rec.Worker = storage.StatusCanceled, reason, true, nil, ""
		if rec.QueuedAt.IsZero() {
			rec.QueuedAt = now
		}
		recs[i] = rec
	}
	if err := q.writeRecords(recs, true); err != nil {
		return marked, fmt.Errorf("cancel %d queued calls: %w", len(recs), err)
	}
	for _, rec := range recs {
		q.cfg.Recorder.cfg.Metrics.observe(rec)
	}
	q.cfg.Recorder.wakeWatches(recs)
	return marked + len(gone), nil
}

func backoff(first time.Duration, n int, limit time.Duration) time.Duration {
	d := first
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}
