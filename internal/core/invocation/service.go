// Package invocation is the one way the core invokes a function. Every
// entry point uses it: the HTTP API for synchronous and asynchronous
// calls, the asynchronous queue when it runs a queued call, and triggers
// (events, cron) when they queue one. It holds the single copy of
// load → invoke → reload when the code went away mid-call → finish the
// record → hand a success to the function's sinks.
//
// The service speaks in records and the cluster's errors; it knows
// nothing of HTTP. Its errors carry a failure.Kind (package failure),
// which each adapter maps through the one table.
package invocation

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/activations"
	"github.com/edgefaas/edgefaas/internal/core/app"
	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/sinks"
	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// Config assembles a Service. Store is required; the rest may be nil.
type Config struct {
	Store *storage.Store
	// Invoker runs functions on the cluster; nil fails every call with
	// cluster.ErrNoWorker.
	Invoker cluster.Invoker
	// Recorder keeps the activation records; nil keeps none (answers still
	// carry an activation id).
	Recorder *activations.Recorder
	// Sinks delivers successful results to the functions' sinks; nil
	// delivers none.
	Sinks *sinks.Dispatcher
	// NoSyncRecords keeps no record of synchronous calls (they are only
	// counted), unless the function has sinks, whose deliveries live in
	// the record. Asynchronous calls always keep theirs: it is the queue's
	// state.
	NoSyncRecords bool
	// Log receives what the caller cannot be told; nil means slog.Default().
	Log *slog.Logger
	// Journal, in a core group, commits the asynchronous queue's writes
	// and the cron ticks through the group's log (replication.Writes);
	// nil: the store.
	Journal Journal
}

// Journal is activations.Journal with the commit of a cron tick.
type Journal interface {
	activations.Journal
	EnqueueCronTick(rec storage.Activation, call storage.QueuedCall, key string, st storage.CronState) error
}

// Service invokes functions for every entry point. It is safe for
// concurrent use.
type Service struct {
	cfg     Config
	log     *slog.Logger
	ids     *activations.IDs
	scripts scriptCache
	queue   *activations.Queue // nil until StartQueue: Enqueue answers ErrNoQueue
}

// New returns a Service over cfg.Store.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("invocation: Config.Store is required")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Service{cfg: cfg, log: cfg.Log, ids: activations.NewIDs()}, nil
}

// Call is one invocation of a stored function.
type Call struct {
	// Function is the stored record, as the caller loaded (and was allowed
	// to see) it.
	Function storage.Function
	// Subject is the caller's name: the record's subject.
	Subject string
	// Args is the JSON object of arguments; empty means {}.
	Args json.RawMessage
	// Script is the APP script that places a synchronous call (resolved
	// with Script), and ScriptName its name for an asynchronous one
	// (resolved again when it runs).
	Script     *app.Script
	ScriptName string
	// Callback is where an asynchronous call's record is POSTed when done.
	Callback string
	// Reload loads the function again when its code went away while the
	// call was routed (updated or deleted meanwhile); nil reloads it by
	// name from the store.
	Reload func() (storage.Function, error)
}

// Result is a synchronous call's outcome.
type Result struct {
	// ActivationID names the call's record; "" with NoSyncRecords.
	ActivationID string
	// Output is the function's JSON output, valid JSON (checked once, by
	// the worker's engine).
	Output json.RawMessage
	// Function is the version that ran (a reload may have changed it).
	Function storage.Function
}

// Invoke runs c now and records it. On failure the Result still names the
// activation, and the error (failure.Of) says what kind of failure it was;
// an error of c.Reload is returned as it is, unrecorded (the caller may no
// longer see the function).
func (s *Service) Invoke(ctx context.Context, c Call) (Result, error) {
	rec := s.newRecord(c.Function, c.Subject)
	f, res, started, err, rerr := s.run(ctx, c.Function, cluster.InvokeRequest{Args: args(c.Args), Subject: c.Subject, Script: c.Script}, c.reload(s.cfg.Store))
	if rerr != nil {
		return Result{ActivationID: rec.ID, Function: f}, rerr
	}
	finish(&rec, f, started, res, err)
	s.recordWithSinks(rec, f, res.Output)
	return Result{ActivationID: rec.ID, Output: res.Output, Function: f}, err
}

// run is the one copy of invoke → reload on not-found → invoke: it runs f
// and returns the version that ran, the cluster's answer, when the call
// started, and the reload's error if reloading failed (err is then the
// first attempt's).
func (s *Service) run(ctx context.Context, f storage.Function, req cluster.InvokeRequest, reload func() (storage.Function, error)) (storage.Function, cluster.InvokeResult, time.Time, error, error) {
	started := time.Now()
	if s.cfg.Invoker == nil {
		return f, cluster.InvokeResult{}, started, cluster.ErrNoWorker, nil
	}
	req.Function = f
	res, err := s.cfg.Invoker.Invoke(ctx, req)
	if errors.Is(err, storage.ErrNotFound) {
		// The function was updated or deleted while this call was routed,
		// and its old code is gone: run the current version (once).
		g, rerr := reload()
		if rerr != nil {
			return f, res, started, err, rerr
		}
		f, req.Function = g, g
		res, err = s.cfg.Invoker.Invoke(ctx, req)
	}
	return f, res, started, err, nil
}

// reload is c.Reload, else a load by name from store.
func (c Call) reload(store *storage.Store) func() (storage.Function, error) {
	if c.Reload != nil {
		return c.Reload
	}
	mod, name := c.Function.Module, c.Function.Name
	return func() (storage.Function, error) { return store.GetFunction(mod, name) }
}

func args(a json.RawMessage) json.RawMessage {
	if len(a) == 0 {
		return json.RawMessage("{}")
	}
	return a
}

// RecordWatch is a long poll's registration for new records
// (activations.Watcher): C is closed when one was committed, Next moves
// past the commits so far and returns the oldest id they held, Close ends
// it.
type RecordWatch interface {
	C() <-chan struct{}
	Next() string
	Close()
}

// WatchRecords registers a long poll for the records of module and
// function (either empty: any); nil without a Recorder.
func (s *Service) WatchRecords(module, function string) RecordWatch {
	if s.cfg.Recorder == nil {
		return nil
	}
	return s.cfg.Recorder.Watch(activations.WatchKey{Module: module, Function: function})
}

// ValidActivationID reports whether id has an activation id's form.
func ValidActivationID(id string) bool { return activations.ValidID(id) }

// ActivationTime is when the activation id was made (false: not an id).
func ActivationTime(id string) (time.Time, bool) { return activations.IDTime(id) }
