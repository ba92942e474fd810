package invocation

import (
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/activations"
	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/failure"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// OtherSeries is the module and function label of the per-function
// series that sum the functions beyond the metrics' bound: every tenant's
// calls, whatever the name (a module may be called so too).
const OtherSeries = activations.OtherLabel

// MaxRecordedResult bounds the result kept in an activation record; a
// longer result is kept as a JSON string of its first bytes, flagged
// result_truncated.
const MaxRecordedResult = 64 << 10

// newRecord starts the record of a synchronous call of f by subject. With
// NoSyncRecords it gets no id (it is only counted), unless f has sinks,
// whose deliveries live in the record.
func (s *Service) newRecord(f storage.Function, subject string) storage.Activation {
	now := time.Now().UTC()
	id := ""
	if !s.cfg.NoSyncRecords || len(f.Sinks) > 0 {
		id = s.ids.New(now)
	}
	return storage.Activation{
		ID: id, Module: f.Module, Function: f.Name, Version: f.Version, Hash: f.Hash,
		Subject: subject, QueuedAt: now, Logs: []string{},
	}
}

// recordWithSinks hands a synchronous call's finished record to the
// writer. A success of a function with sinks gets its deliveries (pending)
// in the record and the outbox entry written with it; nothing here waits
// for them.
func (s *Service) recordWithSinks(rec storage.Activation, f storage.Function, output json.RawMessage) {
	switch {
	case s.cfg.Recorder == nil:
	case rec.ID == "": // NoSyncRecords
		s.cfg.Recorder.Observe(rec)
	default:
		s.cfg.Recorder.RecordWithSinks(rec, s.cfg.Sinks.Admit(f, &rec, output))
	}
}

// finish fills rec from the cluster's answer. The output is not checked
// again: the worker's engine refuses output that is not JSON.
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
		rec.Result, rec.ResultTruncated = boundResult(res.Output)
	}
}

// outcome is a record's status (its failure.Kind's, failure.Table) and
// error text for the cluster's answer.
func outcome(err error) (status, detail string) {
	kind := failure.Of(err)
	status = kind.Row().Record
	var fe *cluster.FunctionError
	var re *cluster.RuntimeError
	var pe *cluster.PlacementError
	switch {
	case err == nil:
		return status, ""
	case errors.As(err, &fe):
		return status, fe.Message
	case errors.As(err, &re):
		return status, re.Message
	case errors.As(err, &pe):
		return status, pe.Message // nothing ran: async calls wait and retry
	case kind == failure.NoWorker:
		return status, cluster.ErrNoWorker.Error()
	case kind == failure.Canceled:
		return status, "the client closed the request; the call may or may not have run"
	case kind == failure.Internal && errors.Is(err, storage.ErrNotFound):
		return status, "the function was deleted"
	case kind == failure.Internal:
		return status, "the platform failed to run the call; the core's log has the details"
	}
	return status, err.Error()
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
