package invocation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/activations"
	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/core/triggers"
)

// Errors of Enqueue and EnqueueTrigger.
var (
	// ErrNoQueue means the core runs without an asynchronous queue.
	ErrNoQueue = errors.New("asynchronous invocation is not enabled on this core")
	// ErrQueueFull means the queue is at its bound; retry shortly.
	ErrQueueFull = activations.ErrFull
	// ErrStopping means the core is shutting down.
	ErrStopping = activations.ErrClosed
)

// StartQueue runs asynchronous calls with cfg (its Store, Recorder and Run
// are the service's): it recovers what a previous run left queued, then
// dispatches. Call it once, before serving.
func (s *Service) StartQueue(cfg activations.QueueConfig) (*activations.Queue, error) {
	q, err := s.NewQueue(cfg)
	if err != nil {
		return nil, err
	}
	return q, s.Start(q)
}

// NewQueue is StartQueue's queue, not started: a core group makes its
// queue follow the log (Queue.Enqueued) before Start reads the store,
// so that no call applied in between is missed.
func (s *Service) NewQueue(cfg activations.QueueConfig) (*activations.Queue, error) {
	cfg.Store, cfg.Recorder, cfg.Run = s.cfg.Store, s.cfg.Recorder, s.runQueued
	if s.cfg.Journal != nil {
		cfg.Journal = s.cfg.Journal
	}
	if cfg.QueuedBytesQuota == nil {
		store := s.cfg.Store
		cfg.QueuedBytesQuota = func(subject string) (int64, bool, error) {
			q, ok, err := store.QuotaOf(subject)
			return q.QueuedBytes, ok, err
		}
	}
	if cfg.Log == nil {
		cfg.Log = s.log
	}
	if cfg.Recorder == nil {
		return nil, errors.New("invocation: asynchronous calls need Config.Recorder")
	}
	return activations.NewQueue(cfg), nil
}

// Start starts q, made by NewQueue, and makes it the service's.
func (s *Service) Start(q *activations.Queue) error {
	if err := q.Start(); err != nil {
		return err
	}
	s.queue = q
	return nil
}

// Enqueue queues c durably and returns its activation id: ErrQueueFull
// when the queue is full, ErrStopping while the core stops, ErrNoQueue
// without a queue. c.ScriptName was resolved by the caller; it is
// resolved again when the call runs.
func (s *Service) Enqueue(c Call) (string, error) {
	if s.queue == nil {
		return "", ErrNoQueue
	}
	f := c.Function
	now := time.Now().UTC()
	rec := storage.Activation{ID: s.ids.New(now), Module: f.Module, Function: f.Name, Version: f.Version, Hash: f.Hash,
		Subject: c.Subject, QueuedAt: now, Logs: []string{}}
	err := s.queue.Submit(rec, storage.QueuedCall{Module: f.Module, Function: f.Name, Subject: c.Subject, Args: args(c.Args), Callback: c.Callback, Script: c.ScriptName, FunctionID: f.ID})
	if err != nil {
		return "", err
	}
	return rec.ID, nil
}

// EnqueueTrigger queues a call that a trigger started, as the function's
// owner, with info in its record (triggers.EnqueueFunc). For a cron tick
// the trigger's state st is committed in the same synced batch as the
// activation (storage.ErrTickDone when that tick was queued before).
func (s *Service) EnqueueTrigger(f storage.Function, a json.RawMessage, info storage.TriggerInfo, cronKey string, st *storage.CronState) (string, error) {
	if s.queue == nil {
		return "", ErrNoQueue
	}
	// Ownership: a trigger runs as the function's owner, so it stops with
	// the owner's token (revoked or deleted subject).
	if active, err := s.SubjectActive(f.Owner); err != nil {
		return "", err
	} else if !active {
		return "", fmt.Errorf("%w: the function's owner %q is revoked", triggers.ErrRefused, f.Owner)
	}
	now := time.Now().UTC()
	rec := storage.Activation{ID: s.ids.New(now), Module: f.Module, Function: f.Name, Version: f.Version, Hash: f.Hash,
		Subject: f.Owner, QueuedAt: now, Logs: []string{}, Trigger: &info}
	call := storage.QueuedCall{Module: f.Module, Function: f.Name, Subject: f.Owner, Args: args(a), FunctionID: f.ID}
	var commit func(storage.Activation, storage.QueuedCall) error
	if st != nil {
		if cronKey == "" {
			return "", errors.New("a cron tick needs its trigger's key")
		}
		enqueue := s.cfg.Store.EnqueueCronTick
		if s.cfg.Journal != nil {
			enqueue = s.cfg.Journal.EnqueueCronTick
		}
		commit = func(rec storage.Activation, call storage.QueuedCall) error {
			return enqueue(rec, call, cronKey, *st)
		}
	}
	if err := s.queue.SubmitWith(rec, call, commit); err != nil {
		return "", err
	}
	return rec.ID, nil
}

var _ triggers.EnqueueFunc = (*Service)(nil).EnqueueTrigger

// runQueued runs one queued call (the queue's RunFunc): the same run as a
// synchronous call, its record finished here and returned to the queue,
// which writes it. The invoker reads the args (args) once it has placed
// the call.
func (s *Service) runQueued(ctx context.Context, rec storage.Activation, qc storage.QueuedCall, args activations.ArgsFunc) activations.Outcome {
	// A call runs on its subject's behalf: not once the subject is revoked
	// (the revocation cancels it; this catches a call the core recovered
	// after it stopped between the two).
	if active, err := s.SubjectActive(qc.Subject); err == nil && !active {
		rec.Status, rec.Error = storage.StatusCanceled, revokedReason(qc.Subject)
		return activations.Outcome{Record: rec}
	}
	f, err := s.cfg.Store.GetFunction(qc.Module, qc.Function)
	if err == nil && qc.FunctionID != "" && f.ID != qc.FunctionID {
		// Deleted and created again, perhaps by another tenant: not the
		// function this call was queued for.
		err = storage.ErrNotFound
	}
	if err != nil {
		rec.Status, rec.Error = storage.StatusRuntimeError, fmt.Sprintf("function %s/%s no longer exists", qc.Module, qc.Function)
		if !errors.Is(err, storage.ErrNotFound) {
			rec.Error = "the core could not read the function; its log has the details"
			s.log.Error("async: read function", "id", rec.ID, "module", qc.Module, "function", qc.Function, "err", err)
		}
		return activations.Outcome{Record: rec}
	}
	if s.cfg.Invoker == nil {
		finish(&rec, f, time.Now(), cluster.InvokeResult{}, cluster.ErrNoWorker)
		return activations.Outcome{Record: rec}
	}
	req := cluster.InvokeRequest{LoadArgs: args, Subject: qc.Subject}
	if qc.Script != "" {
		// Checked when queued; deleted since, or no longer covering f: final.
		if req.Script, err = s.Script(f, qc.Script, nil); err != nil {
			rec.Status, rec.Error = storage.StatusRuntimeError, err.Error()
			var bad *ScriptError
			if !errors.As(err, &bad) {
				rec.Error = fmt.Sprintf("APP script %q: %v", qc.Script, err)
			}
			return activations.Outcome{Record: rec}
		}
	}
	call := Call{Function: f}
	f, res, started, err, _ := s.run(ctx, f, req, call.reload(s.cfg.Store))
	finish(&rec, f, started, res, err)
	job := s.cfg.Sinks.Admit(f, &rec, res.Output)
	return activations.Outcome{Record: rec, Idempotent: f.Metadata.Idempotent, Sinks: job}
}

// SubjectActive reports whether subject may still have calls run on its
// behalf: it exists and its token is not revoked.
func (s *Service) SubjectActive(subject string) (bool, error) {
	sub, err := s.cfg.Store.GetSubject(subject)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("read subject %q: %w", subject, err)
	}
	return !sub.Revoked(), nil
}

func revokedReason(subject string) string {
	return fmt.Sprintf("canceled: subject %q was revoked", subject)
}

// CancelSubject ends the asynchronous calls queued or running on
// subject's behalf (StatusCanceled, no callback): called once its token
// is revoked. It returns how many it ended.
func (s *Service) CancelSubject(subject string) (int, error) {
	if s.queue == nil {
		return 0, nil
	}
	return s.queue.Cancel(func(c storage.QueuedCall) bool { return c.Subject == subject }, revokedReason(subject))
}

// QueueStatus is the asynchronous queue's length (activations queued or
// running) and the age of its oldest waiting activation; ok is false
// before StartQueue.
func (s *Service) QueueStatus() (length int, oldest time.Duration, ok bool) {
	if s.queue == nil {
		return 0, 0, false
	}
	return s.queue.Depth(), s.queue.OldestAge(), true
}
