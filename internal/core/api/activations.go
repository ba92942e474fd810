package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/edgefaas/edgefaas/internal/cluster"
	"github.com/edgefaas/edgefaas/internal/core/activations"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// ActivationHeader carries the activation id on every synchronous
// invocation's answer (the body stays FunLess's).
const ActivationHeader = "X-Edgefaas-Activation"

// MaxRecordedResult bounds the result kept in an activation record; a
// longer result is kept as a JSON string of its first bytes, flagged
// result_truncated.
const MaxRecordedResult = 64 << 10

const (
	defaultListLimit = 50
	maxListLimit     = 1000
	maxListScan      = 200000 // records examined by one list request
	maxListWait      = 60 * time.Second
	maxCallbackLen   = 2048
)

var knownStatuses = map[string]bool{
	storage.StatusQueued: true, storage.StatusRunning: true, storage.StatusSuccess: true,
	storage.StatusFunctionError: true, storage.StatusRuntimeError: true, storage.StatusTimeout: true,
	storage.StatusBusy: true, storage.StatusNoWorker: true, storage.StatusLost: true,
}

// newActivation starts the record of a call of f by the caller. With
// NoSyncRecords a synchronous call's record gets no id: it is only counted;
// unless f has sinks, whose deliveries live in the record (it is kept).
func (s *Server) newActivation(c *call, f storage.Function) storage.Activation {
	now := time.Now().UTC()
	id := ""
	if !s.cfg.NoSyncRecords || len(f.Sinks) > 0 {
		id = s.ids.New(now)
	}
	return storage.Activation{
		ID: id, Module: f.Module, Function: f.Name, Version: f.Version, Hash: f.Hash,
		Subject: c.subject.Name, QueuedAt: now, Logs: []string{},
	}
}

// record hands a synchronous call's finished record to the writer.
func (s *Server) record(rec storage.Activation) {
	switch {
	case s.cfg.Recorder == nil:
	case rec.ID == "": // NoSyncRecords
		s.cfg.Recorder.Observe(rec)
	default:
		s.cfg.Recorder.Record(rec)
	}
}

// recordWithSinks is record for a call that may have succeeded: a
// function with sinks gets its deliveries (pending) in the record and the
// outbox entry written with it; nothing here waits for them.
func (s *Server) recordWithSinks(rec storage.Activation, f storage.Function, output json.RawMessage) {
	if s.cfg.Recorder == nil || rec.ID == "" { // rec.ID: see newActivation
		s.record(rec)
		return
	}
	job := s.cfg.Sinks.Admit(f, &rec, output)
	s.cfg.Recorder.RecordWithSinks(rec, job)
}

// finish fills rec from an Invoker's answer.
func finish(rec *storage.Activation, f storage.Function, started time.Time, res cluster.InvokeResult, err error) {
	st := started.UTC()
	rec.StartedAt = &st
	rec.Version, rec.Hash = f.Version, f.Hash
	rec.Worker = res.Worker
	if res.Duration > 0 {
		rec.DurationMS = float64(res.Duration.Microseconds()) / 1000
	} else {
		rec.DurationMS = float64(time.Since(started).Microseconds()) / 1000
	}
	rec.Logs = res.Logs
	if rec.Logs == nil {
		rec.Logs = []string{}
	}
	rec.LogsTruncated = len(rec.Logs) > 0 && rec.Logs[len(rec.Logs)-1] == wasm.LogTruncatedMarker
	rec.Status, rec.Error = outcome(err)
	if err == nil {
		if !json.Valid(res.Output) {
			rec.Status, rec.Error = storage.StatusRuntimeError, "the function returned output that is not valid JSON"
			return
		}
		rec.Result, rec.ResultTruncated = boundResult(res.Output)
	}
}

// outcome maps an Invoker error to a record's status and error text.
func outcome(err error) (status, detail string) {
	var fe *cluster.FunctionError
	var re *cluster.RuntimeError
	var pe *cluster.PlacementError
	switch {
	case err == nil:
		return storage.StatusSuccess, ""
	case errors.As(err, &fe):
		return storage.StatusFunctionError, fe.Message
	case errors.As(err, &re):
		return storage.StatusRuntimeError, re.Message
	case errors.As(err, &pe):
		return storage.StatusNoWorker, pe.Message // nothing ran: async calls wait and retry
	case errors.Is(err, cluster.ErrWorkerLost):
		return storage.StatusLost, err.Error()
	case errors.Is(err, cluster.ErrNoWorker):
		return storage.StatusNoWorker, cluster.ErrNoWorker.Error()
	case errors.Is(err, cluster.ErrBusy):
		return storage.StatusBusy, err.Error()
	case errors.Is(err, cluster.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return storage.StatusTimeout, err.Error()
	case errors.Is(err, context.Canceled):
		return storage.StatusLost, "the client closed the request; the call may or may not have run"
	case errors.Is(err, storage.ErrNotFound):
		return storage.StatusRuntimeError, "the function was deleted"
	}
	return storage.StatusRuntimeError, "the platform failed to run the call; the core's log has the details"
}

// boundResult keeps out whole up to MaxRecordedResult, else a JSON string
// of its first bytes.
func boundResult(out json.RawMessage) (json.RawMessage, bool) {
	if len(out) <= MaxRecordedResult {
		return out, false
	}
	cut, _ := json.Marshal(strings.ToValidUTF8(string(out[:MaxRecordedResult]), ""))
	return cut, true
}

// wantsAsync reports whether the client asked for an asynchronous call:
// ?async=true or Prefer: respond-async.
func wantsAsync(r *http.Request) bool {
	if v := r.URL.Query().Get("async"); v != "" {
		if b, err := strconv.ParseBool(v); err == nil && b {
			return true
		}
	}
	for _, p := range r.Header.Values("Prefer") {
		for _, part := range strings.Split(p, ",") {
			if strings.EqualFold(strings.TrimSpace(part), "respond-async") {
				return true
			}
		}
	}
	return false
}

// decodeCallback returns the body's "callback" (validated), after
// decodeArgs accepted the body.
func decodeCallback(raw []byte) (string, error) {
	var b invokeBody
	if len(strings.TrimSpace(string(raw))) == 0 || json.Unmarshal(raw, &b) != nil || b.Callback == "" {
		return "", nil
	}
	u, err := url.Parse(b.Callback)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(b.Callback) > maxCallbackLen {
		return "", errorf(http.StatusBadRequest, `Bad Request: "callback" must be an http or https URL of at most %d characters`, maxCallbackLen)
	}
	return b.Callback, nil
}

// Enqueue queues an asynchronous call of f on behalf of subject and
// returns its activation id once it is durably stored. Triggers (events,
// cron) use it as the API does: ErrFull when the queue is full,
// activations.ErrClosed while the core stops, ErrNoQueue without a queue.
func (s *Server) Enqueue(f storage.Function, subject string, args json.RawMessage, callback string) (string, error) {
	return s.enqueue(f, subject, args, callback, "")
}

// enqueue is Enqueue with an APP script's name (checked by the caller).
func (s *Server) enqueue(f storage.Function, subject string, args json.RawMessage, callback, script string) (string, error) {
	if s.queue == nil {
		return "", ErrNoQueue
	}
	now := time.Now().UTC()
	rec := storage.Activation{ID: s.ids.New(now), Module: f.Module, Function: f.Name, Version: f.Version, Hash: f.Hash,
		Subject: subject, QueuedAt: now, Logs: []string{}}
	if len(args) == 0 {
		args = json.RawMessage("{}")
	}
	err := s.queue.Submit(rec, storage.QueuedCall{Module: f.Module, Function: f.Name, Subject: subject, Args: args, Callback: callback, Script: script})
	if err != nil {
		return "", err
	}
	return rec.ID, nil
}

// ErrNoQueue means the server runs without an asynchronous queue.
var ErrNoQueue = errors.New("asynchronous invocation is not enabled on this core")

// invokeAsync queues the call durably and answers 202 with its id.
func (s *Server) invokeAsync(c *call, f storage.Function, args json.RawMessage, callback, script string) error {
	id, err := s.enqueue(f, c.subject.Name, args, callback, script)
	switch {
	case errors.Is(err, ErrNoQueue):
		return errorf(http.StatusServiceUnavailable, "Service Unavailable: asynchronous invocation is not enabled on this core")
	case errors.Is(err, activations.ErrFull):
		return &apiError{status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {"1"}},
			detail: "Too Many Requests: the asynchronous queue is full; retry shortly"}
	case errors.Is(err, activations.ErrClosed):
		return errorf(http.StatusServiceUnavailable, "Service Unavailable: the core is shutting down")
	case err != nil:
		return fmt.Errorf("queue %s/%s: %w", f.Module, f.Name, err)
	}
	c.w.Header().Set(ActivationHeader, id)
	writeJSON(c.w, http.StatusAccepted, data(map[string]string{"activation_id": id}))
	return nil
}

// runQueued runs one queued activation (the async queue's RunFunc).
func (s *Server) runQueued(ctx context.Context, rec storage.Activation, qc storage.QueuedCall) activations.Outcome {
	f, err := s.cfg.Store.GetFunction(qc.Module, qc.Function)
	if err != nil {
		rec.Status, rec.Error = storage.StatusRuntimeError, fmt.Sprintf("function %s/%s no longer exists", qc.Module, qc.Function)
		if !errors.Is(err, storage.ErrNotFound) {
			rec.Error = "the core could not read the function; its log has the details"
			s.log.Error("async: read function", "id", rec.ID, "err", err)
		}
		return activations.Outcome{Record: rec}
	}
	started := time.Now()
	if s.cfg.Invoker == nil {
		finish(&rec, f, started, cluster.InvokeResult{}, cluster.ErrNoWorker)
		return activations.Outcome{Record: rec}
	}
	req := cluster.InvokeRequest{Function: f, Args: qc.Args, Subject: qc.Subject}
	if qc.Script != "" {
		// Checked when queued; deleted since, or no longer covering f: final.
		sc, err := s.cfg.Store.GetScript(qc.Script)
		if err == nil {
			req.Script, err = s.scripts.decode(sc)
		}
		if err == nil {
			err = checkTag(req.Script, qc.Script, f)
		}
		if err != nil {
			rec.Status, rec.Error = storage.StatusRuntimeError, fmt.Sprintf("APP script %q: %v", qc.Script, err)
			if ae, ok := err.(*apiError); ok {
				rec.Error = ae.detail
			}
			return activations.Outcome{Record: rec}
		}
	}
	res, err := s.cfg.Invoker.Invoke(ctx, req)
	if errors.Is(err, storage.ErrNotFound) {
		if g, gerr := s.cfg.Store.GetFunction(qc.Module, qc.Function); gerr == nil {
			f, req.Function = g, g
			res, err = s.cfg.Invoker.Invoke(ctx, req)
		}
	}
	finish(&rec, f, started, res, err)
	job := s.cfg.Sinks.Admit(f, &rec, res.Output)
	return activations.Outcome{Record: rec, Idempotent: f.Metadata.Idempotent, Sinks: job}
}

// visibleActivation: admins see every record; others the calls they made
// and the calls of functions in modules they own.
func (s *Server) visibleActivation(sub storage.Subject, rec storage.Activation, owners map[string]string) bool {
	if sub.Admin || rec.Subject == sub.Name {
		return true
	}
	if rec.Module == storage.DefaultModule {
		return false
	}
	owner, ok := owners[rec.Module]
	if !ok {
		if m, err := s.cfg.Store.GetModule(rec.Module); err == nil {
			owner = m.Owner
		}
		owners[rec.Module] = owner
	}
	return owner != "" && owner == sub.Name
}

func (s *Server) getActivation(c *call) error {
	id := c.ps.ByName("id")
	notFound := errorf(http.StatusNotFound, "Not Found: activation %q does not exist", id)
	if !activations.ValidID(id) {
		return notFound
	}
	rec, err := s.cfg.Store.GetActivation(id)
	if errors.Is(err, storage.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return err
	}
	if !s.visibleActivation(c.subject, rec, map[string]string{}) {
		return notFound
	}
	writeJSON(c.w, http.StatusOK, data(activationView(rec)))
	return nil
}

func activationView(a storage.Activation) storage.Activation {
	if a.Logs == nil {
		a.Logs = []string{}
	}
	return a
}

// listActivations answers GET /v1/activations: newest first, filtered by
// module, function and status, below ?before=ID; with ?after=ID only newer
// ones, and with &wait=SECONDS it waits (long poll) until there is one.
func (s *Server) listActivations(c *call) error {
	q := c.r.URL.Query()
	module, function, status := q.Get("module"), q.Get("function"), q.Get("status")
	if status != "" && !knownStatuses[status] {
		return errorf(http.StatusBadRequest, "Bad Request: status %q is not one of queued, running, success, function_error, runtime_error, timeout, busy, no_worker, lost", status)
	}
	limit := defaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return errorf(http.StatusBadRequest, "Bad Request: limit must be a number from 1 to %d", maxListLimit)
		}
		limit = n
	}
	before, after := q.Get("before"), q.Get("after")
	for name, v := range map[string]string{"before": before, "after": after} {
		if v != "" && !activations.ValidID(v) {
			return errorf(http.StatusBadRequest, "Bad Request: %s must be an activation id", name)
		}
	}
	var wait time.Duration
	if v := q.Get("wait"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || time.Duration(n)*time.Second > maxListWait || after == "" {
			return errorf(http.StatusBadRequest, "Bad Request: wait must be a number of seconds from 0 to %d, with after=ID", int(maxListWait/time.Second))
		}
		wait = time.Duration(n) * time.Second
	}
	deadline := time.Now().Add(wait)
	for {
		var changed <-chan struct{}
		if s.cfg.Recorder != nil {
			changed = s.cfg.Recorder.Changed() // before the scan: no commit is missed
		}
		out := []storage.Activation{}
		owners := map[string]string{}
		scanned := 0
		err := s.cfg.Store.ScanActivations(before, func(a storage.Activation) bool {
			scanned++
			if after != "" && a.ID <= after {
				return false
			}
			if (module == "" || a.Module == module) && (function == "" || a.Function == function) &&
				(status == "" || a.Status == status) && s.visibleActivation(c.subject, a, owners) {
				out = append(out, activationView(a))
			}
			return len(out) < limit && scanned < maxListScan
		})
		if err != nil {
			return err
		}
		left := time.Until(deadline)
		if len(out) > 0 || left <= 0 || changed == nil {
			writeJSON(c.w, http.StatusOK, data(out))
			return nil
		}
		timer := time.NewTimer(left)
		select {
		case <-changed:
		case <-timer.C:
		case <-c.r.Context().Done():
			timer.Stop()
			return errorf(499, "client closed the request")
		case <-s.stopping:
			deadline = time.Now()
		}
		timer.Stop()
	}
}
