package triggers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/core/triggers/eventspec"
)

// EnqueueFunc queues one triggered activation of f, run as f's owner,
// with args; info goes into its record. For a cron tick, cronKey and st
// are set: the trigger's new state is committed in the same batch as the
// activation (storage.ErrTickDone if that tick was already queued). It
// returns once the activation is durably queued. The API's
// Server.EnqueueTrigger is the implementation.
type EnqueueFunc func(f storage.Function, args json.RawMessage, info storage.TriggerInfo, cronKey string, st *storage.CronState) (string, error)

// Config configures a Manager. Store and Enqueue are required.
type Config struct {
	Store   *storage.Store
	Enqueue EnqueueFunc
	// Dial connects to an MQTT broker under the operator's egress policy;
	// nil dials directly.
	Dial func(ctx context.Context, host string, port int) (net.Conn, error)
	// Allowed checks, at upload, that a broker is a destination the
	// operator permits; nil permits any.
	Allowed func(host string, port int) error
	// Bound, if set, checks a broker against the egress bound of the
	// function's owner (a trigger connects on the owner's behalf) each
	// time it connects; a refusal fails the connection, logged and
	// retried with backoff, so a bound the admin widens takes effect.
	Bound func(owner, host string, port int) error
	// Active, if set, reports whether a function's owner may have its
	// triggers run (the subject exists and is not revoked); nil: every
	// owner may. SubjectChanged applies a change of its answer.
	Active func(owner string) bool
	// Topic, if set, checks at upload that a trigger's owner may
	// subscribe to its topic on its broker (the embedded broker's ACL).
	Topic func(owner, host string, port int, topic string) error
	// Login, if set, gives the username and password a trigger of
	// owner's connects to a broker with, in place of its params' (the
	// embedded broker's per-subject logins); ok false keeps the params'.
	Login func(owner, host string, port int) (username, password string, ok bool)
	Log   *slog.Logger
	// RestartBackoff is the first delay before a failed trigger runs
	// again (doubling to 30 s); 0 means 1 s.
	RestartBackoff time.Duration
	// CronStates writes the cron triggers' states: in a core group
	// through the group's log (replication.Writes), so the next leader
	// resumes from the last tick fired; nil: Store.
	CronStates CronStates
}

// CronStates writes a cron trigger's state (storage.Store's methods).
type CronStates interface {
	InitCronState(key string, st storage.CronState) (storage.CronState, error)
	ShiftCronState(key string, from, to time.Time) error
}

// Manager runs every function's triggers: one goroutine per trigger,
// supervised (a panic or an error restarts it after a backoff), replaced
// when its function changes and stopped when it is deleted.
type Manager struct {
	cfg      Config
	log      *slog.Logger
	instance string

	count counters

	mu      sync.Mutex
	fns     map[string]map[string]*runner // "module/function" → key → runner
	stopped bool
	paused  bool // stopped by Pause, until Resume
	wg      sync.WaitGroup
}

// runner is one running trigger.
type runner struct {
	key    string
	index  atomic.Int64
	fn     atomic.Pointer[storage.Function]
	event  storage.Event
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Manager; Start loads the stored triggers.
func New(cfg Config) *Manager {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.RestartBackoff <= 0 {
		cfg.RestartBackoff = time.Second
	}
	if cfg.CronStates == nil {
		cfg.CronStates = cfg.Store
	}
	if cfg.Dial == nil {
		cfg.Dial = func(ctx context.Context, host string, port int) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", net.JoinHostPort(host, fmt.Sprint(port)))
		}
	}
	return &Manager{cfg: cfg, log: cfg.Log, fns: map[string]map[string]*runner{}}
}

// Start re-establishes the triggers of every stored function (after a core
// restart: the MQTT sessions resume, cron triggers continue from their
// last fired tick).
func (m *Manager) Start() error {
	id, err := m.cfg.Store.TriggerInstance()
	if err != nil {
		return err
	}
	m.instance = id
	fns, err := m.cfg.Store.FunctionsWithEvents()
	if err != nil {
		return fmt.Errorf("load triggers: %w", err)
	}
	n := 0
	for _, f := range fns {
		m.sync(f)
		n += len(f.Events)
	}
	if n > 0 {
		m.log.Info("triggers started", "functions", len(fns), "triggers", n)
	}
	return nil
}

// Check refuses events of owner's function whose broker the operator's
// egress policy does not permit, or whose topic the broker would not let
// owner subscribe to (the upload answers 400).
func (m *Manager) Check(owner string, events []storage.Event) error {
	for i, ev := range events {
		if ev.Type != storage.EventMQTT || ev.Params == nil {
			continue
		}
		p := ev.Params
		if m.cfg.Allowed != nil {
			if err := m.cfg.Allowed(p.Host, p.Port); err != nil {
				return &eventspec.FieldError{Field: fmt.Sprintf("events[%d].params.host", i), Msg: err.Error()}
			}
		}
		if m.cfg.Topic != nil {
			if err := m.cfg.Topic(owner, p.Host, p.Port, p.Topic); err != nil {
				return &eventspec.FieldError{Field: fmt.Sprintf("events[%d].params.topic", i), Msg: err.Error()}
			}
		}
	}
	return nil
}

// FunctionChanged applies a committed change: a created or updated
// function's triggers replace its previous ones (a trigger the update kept
// keeps running); a deleted function's triggers are disconnected and their
// state (MQTT session, cron state) dropped.
func (m *Manager) FunctionChanged(ev cluster.FunctionEvent) {
	switch ev.Kind {
	case cluster.FunctionDeleted:
		m.remove(ev.Function.Module, ev.Function.Name)
	default:
		if p := ev.Previous; p != nil && (p.Module != ev.Function.Module || p.Name != ev.Function.Name) {
			m.remove(p.Module, p.Name)
		}
		m.sync(ev.Function)
	}
}

// SubjectChanged applies a committed change of subject's token: revoked,
// the triggers of the functions it owns stop and their state (MQTT
// session, cron state) is dropped, so nothing that happens while it is
// revoked runs later; given a token again, they start afresh.
func (m *Manager) SubjectChanged(subject string) error {
	fns, err := m.cfg.Store.FunctionsWithEvents()
	if err != nil {
		return fmt.Errorf("triggers of subject %q: %w", subject, err)
	}
	var dropped []<-chan struct{}
	for _, f := range fns {
		if f.Owner == subject {
			dropped = append(dropped, m.sync(f))
		}
	}
	// The removed triggers' MQTT sessions are gone before this returns: a
	// message published after it is not kept for them.
	for _, d := range dropped {
		<-d
	}
	return nil
}

// ownerActive reports whether a function's owner may have its triggers
// run (Config.Active).
func (m *Manager) ownerActive(owner string) bool {
	return m.cfg.Active == nil || m.cfg.Active(owner)
}

// Stop stops every trigger and waits (until ctx ends). MQTT sessions and
// cron states are kept for the next start.
func (m *Manager) Stop(ctx context.Context) {
	m.mu.Lock()
	m.stopped = true
	for _, rs := range m.fns {
		for _, r := range rs {
			r.cancel()
		}
	}
	m.mu.Unlock()
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		m.log.Warn("triggers did not stop in time")
	}
}

// Pause stops every trigger, as Stop does, until Resume: in a core group
// the triggers run on the leader only, paused on the other members.
// While paused, changes are not applied; Resume reloads them all.
func (m *Manager) Pause(ctx context.Context) {
	m.mu.Lock()
	m.paused = true
	m.mu.Unlock()
	m.Stop(ctx)
	m.mu.Lock()
	clear(m.fns)
	m.mu.Unlock()
}

// Resume starts the triggers again after Pause, from the store (Start).
func (m *Manager) Resume() error {
	m.mu.Lock()
	if !m.paused {
		m.mu.Unlock()
		return nil
	}
	m.paused, m.stopped = false, false
	m.mu.Unlock()
	return m.Start()
}

// Count is the number of triggers running (for tests and metrics).
func (m *Manager) Count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, rs := range m.fns {
		n += len(rs)
	}
	return n
}

func fnKey(module, name string) string { return module + "/" + name }

// sync makes f's running triggers what it declares; the channel closes
// once the removed ones' MQTT sessions are dropped.
func (m *Manager) sync(f storage.Function) <-chan struct{} {
	want := map[string]int{}
	if m.ownerActive(f.Owner) {
		for i := range f.Events {
			want[eventspec.Key(f.Module, f.Name, f.Events, i)] = i
		}
	}
	m.mu.Lock()
	if m.stopped {
		m.mu.Unlock()
		return closed
	}
	cur := m.fns[fnKey(f.Module, f.Name)]
	if cur == nil {
		cur = map[string]*runner{}
	}
	var gone []*runner
	for k, r := range cur {
		if _, ok := want[k]; !ok {
			r.cancel()
			gone = append(gone, r)
			delete(cur, k)
		}
	}
	fn := f
	for k, i := range want {
		if r, ok := cur[k]; ok {
			r.fn.Store(&fn)
			r.index.Store(int64(i))
			continue
		}
		cur[k] = m.startLocked(fn, k, i)
	}
	if len(cur) == 0 {
		delete(m.fns, fnKey(f.Module, f.Name))
	} else {
		m.fns[fnKey(f.Module, f.Name)] = cur
	}
	m.mu.Unlock()
	if len(gone) > 0 {
		m.log.Info("triggers replaced", "module", f.Module, "function", f.Name, "removed", len(gone))
	}
	keep := map[string]bool{}
	for k := range want {
		keep[k] = true
	}
	return m.cleanup(f.Module, f.Name, gone, keep)
}

// closed is a channel closed from the start.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (m *Manager) remove(module, name string) {
	m.mu.Lock()
	cur := m.fns[fnKey(module, name)]
	delete(m.fns, fnKey(module, name))
	var gone []*runner
	for _, r := range cur {
		r.cancel()
		gone = append(gone, r)
	}
	m.mu.Unlock()
	if len(gone) > 0 {
		m.log.Info("triggers removed", "module", module, "function", name, "count", len(gone))
	}
	m.cleanup(module, name, gone, nil)
}

// cleanup drops what removed triggers leave: their MQTT sessions on the
// broker (queued messages for a trigger that no longer exists) and their
// cron states. Best effort, off the caller's goroutine; the channel
// closes when the sessions are dropped (or the attempts failed).
func (m *Manager) cleanup(module, name string, gone []*runner, keep map[string]bool) <-chan struct{} {
	if err := m.cfg.Store.DeleteCronStates(module, name, keep); err != nil {
		m.log.Warn("could not delete cron states", "module", module, "function", name, "err", err)
	}
	var drops sync.WaitGroup
	for _, r := range gone {
		if r.event.Type != storage.EventMQTT {
			continue
		}
		r := r
		m.wg.Add(1)
		drops.Add(1)
		go func() {
			defer m.wg.Done()
			defer drops.Done()
			<-r.done
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := m.dropSession(ctx, r); err != nil {
				m.log.Debug("could not drop the MQTT session of a removed trigger", "module", module, "function", name, "err", err)
			}
		}()
	}
	done := make(chan struct{})
	go func() { drops.Wait(); close(done) }()
	return done
}

func (m *Manager) startLocked(f storage.Function, key string, i int) *runner {
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{key: key, event: f.Events[i], cancel: cancel, done: make(chan struct{})}
	r.fn.Store(&f)
	r.index.Store(int64(i))
	log := m.log.With("module", f.Module, "function", f.Name, "trigger", i, "type", r.event.Type)
	body := m.runCron
	if r.event.Type == storage.EventMQTT {
		body = m.runMQTT
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(r.done)
		m.supervise(ctx, log, func(ctx context.Context) error { return body(ctx, log, r) })
	}()
	return r
}

// supervise runs body until ctx ends, restarting it after an error or a
// panic with a backoff (doubling to 30 s, reset after a minute of health).
func (m *Manager) supervise(ctx context.Context, log *slog.Logger, body func(context.Context) error) {
	delay := m.cfg.RestartBackoff
	for {
		began := time.Now()
		err := func() (err error) {
			defer func() {
				if p := recover(); p != nil {
					err = fmt.Errorf("panic: %v", p)
				}
			}()
			return body(ctx)
		}()
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > time.Minute {
			delay = m.cfg.RestartBackoff
		}
		log.Warn("trigger failed; restarting it", "err", err, "after", delay)
		if !sleep(ctx, delay) {
			return
		}
		delay = min(delay*2, 30*time.Second)
	}
}

// sleep waits d or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// ErrRefused (wrapped) from an EnqueueFunc means the activation must not
// run (its owner is revoked): an MQTT message is acknowledged and dropped,
// a cron tick is retried and, while refused, its ticks count as missed.
var ErrRefused = errors.New("trigger refused")

// errStopped ends a trigger body whose context ended.
var errStopped = errors.New("trigger stopped")
