package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Activation statuses. The first two are not final: the record will be
// written again.
const (
	StatusQueued        = "queued"
	StatusRunning       = "running"
	StatusSuccess       = "success"
	StatusFunctionError = "function_error"
	StatusRuntimeError  = "runtime_error"
	StatusTimeout       = "timeout"
	StatusBusy          = "busy"
	StatusNoWorker      = "no_worker"
	StatusLost          = "lost"
)

// FinalStatus reports whether an activation in status s is finished.
func FinalStatus(s string) bool { return s != StatusQueued && s != StatusRunning }

// Activation is the record of one invocation, synchronous or not: what ran,
// for whom, where, how long, and what came out. Its ID sorts by time.
type Activation struct {
	ID              string          `json:"id"`
	Module          string          `json:"module"`
	Function        string          `json:"function"`
	Version         uint64          `json:"version"`
	Hash            string          `json:"hash"`
	Subject         string          `json:"subject"`
	Worker          string          `json:"worker"`
	Async           bool            `json:"async"`
	Status          string          `json:"status"`
	QueuedAt        time.Time       `json:"queued_at"`
	StartedAt       *time.Time      `json:"started_at"`
	DurationMS      float64         `json:"duration_ms"`
	Error           string          `json:"error,omitempty"`
	Result          json.RawMessage `json:"result,omitempty"`
	ResultTruncated bool            `json:"result_truncated"`
	Logs            []string        `json:"logs"`
	LogsTruncated   bool            `json:"logs_truncated"`
	Attempts        int             `json:"attempts,omitempty"`
	Trigger         *TriggerInfo    `json:"trigger,omitempty"` // set when a trigger (events) started it
	// Sinks is the delivery of a successful result to each of the
	// function's sinks (none: the function has no sinks).
	Sinks []SinkDelivery `json:"sinks,omitempty"`
}

// QueuedCall is what an asynchronous activation needs to run (kept under
// q/<id> until its record is final).
type QueuedCall struct {
	Module   string          `json:"module"`
	Function string          `json:"function"`
	Subject  string          `json:"subject"`
	Args     json.RawMessage `json:"args"`
	Callback string          `json:"callback,omitempty"`
	// Script is the APP script the call is placed by ("": the platform's).
	Script string `json:"script,omitempty"`
}

func keyActivation(id string) []byte { return []byte("a/" + id) }
func keyQueued(id string) []byte     { return []byte("q/" + id) }

var (
	prefixActivations = []byte("a/")
	prefixQueued      = []byte("q/")
)

// EnqueueActivation stores a queued activation and its call in one batch
// committed with pebble.Sync: once it returns nil, a kill -9 loses nothing.
func (s *Store) EnqueueActivation(rec Activation, call QueuedCall) error {
	b := s.db.NewBatch()
	defer b.Close()
	if err := setJSON(b, keyActivation(rec.ID), rec); err != nil {
		return err
	}
	if err := setJSON(b, keyQueued(rec.ID), call); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("enqueue activation %s: %w", rec.ID, err)
	}
	return nil
}

// WriteActivations stores records in one batch. A final record of an
// asynchronous activation also drops its queued call. With sync the batch
// is fsynced before it returns. Activation keys bypass the read cache, so
// writing them never slows function lookups.
func (s *Store) WriteActivations(recs []Activation, sync bool) error {
	if len(recs) == 0 {
		return nil
	}
	return s.WriteActivationsWithSinks(recs, nil, sync)
}

func addActivations(b *pebble.Batch, recs []Activation) error {
	for i := range recs {
		if err := setJSON(b, keyActivation(recs[i].ID), recs[i]); err != nil {
			return err
		}
		if recs[i].Async && FinalStatus(recs[i].Status) {
			if err := b.Delete(keyQueued(recs[i].ID), nil); err != nil {
				return fmt.Errorf("dequeue %s: %w", recs[i].ID, err)
			}
		}
	}
	return nil
}

// GetActivation returns one record, or ErrNotFound.
func (s *Store) GetActivation(id string) (Activation, error) {
	var a Activation
	v, closer, err := s.db.Get(keyActivation(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return a, fmt.Errorf("activation %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return a, fmt.Errorf("read activation %q: %w", id, err)
	}
	defer closer.Close()
	return a, jsonUnmarshal(keyActivation(id), v, &a)
}

// ScanActivations calls fn with records newest first, starting below the
// ID before (every record if empty), until fn returns false.
func (s *Store) ScanActivations(before string, fn func(Activation) bool) error {
	upper := prefixEnd(prefixActivations)
	if before != "" {
		upper = keyActivation(before)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefixActivations, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("scan activations: %w", err)
	}
	for ok := it.Last(); ok; ok = it.Prev() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("scan activations: %w", err)
		}
		var a Activation
		if err := jsonUnmarshal(it.Key(), v, &a); err != nil {
			it.Close()
			return err
		}
		if !fn(a) {
			break
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("scan activations: %w", err)
	}
	return nil
}

// QueuedActivation is an activation whose record is not final yet, with the
// call it runs.
type QueuedActivation struct {
	Record Activation
	Call   QueuedCall
}

// QueuedActivations lists the asynchronous activations not finished yet,
// oldest first: what a restarted core must run again or mark lost.
func (s *Store) QueuedActivations() ([]QueuedActivation, error) {
	var out []QueuedActivation
	err := s.scan(prefixQueued, func(k, v []byte) error {
		var q QueuedActivation
		if err := jsonUnmarshal(k, v, &q.Call); err != nil {
			return err
		}
		id := string(k[len(prefixQueued):])
		rec, err := s.GetActivation(id)
		if errors.Is(err, ErrNotFound) {
			// Cannot happen (one batch writes both); keep the call visible.
			rec = Activation{ID: id, Module: q.Call.Module, Function: q.Call.Function, Subject: q.Call.Subject, Async: true, Status: StatusQueued}
		} else if err != nil {
			return err
		}
		q.Record = rec
		out = append(out, q)
		return nil
	})
	return out, err
}

// PruneActivations deletes finished records older than cutoff (by the time
// in their ID, read by idTime), then the oldest finished ones until the
// records take at most maxBytes (0: no byte bound). Records still queued or
// running are kept. It returns how many it deleted and the bytes left.
func (s *Store) PruneActivations(cutoff time.Time, maxBytes int64, idTime func(id string) (time.Time, bool)) (deleted int, left int64, err error) {
	queued := map[string]bool{}
	if err := s.scan(prefixQueued, func(k, _ []byte) error {
		queued[string(k[len(prefixQueued):])] = true
		return nil
	}); err != nil {
		return 0, 0, err
	}
	type entry struct {
		id   string
		size int64
	}
	var all []entry
	var total int64
	if err := s.scan(prefixActivations, func(k, v []byte) error {
		e := entry{id: string(k[len(prefixActivations):]), size: int64(len(k) + len(v))}
		all = append(all, e)
		total += e.size
		return nil
	}); err != nil {
		return 0, 0, err
	}
	b := s.db.NewBatch()
	defer b.Close()
	for _, e := range all {
		if queued[e.id] {
			continue
		}
		t, ok := idTime(e.id)
		old := ok && t.Before(cutoff)
		if !old && (maxBytes <= 0 || total <= maxBytes) {
			break // ids sort by time: everything after is newer
		}
		if err := b.Delete(keyActivation(e.id), nil); err != nil {
			return deleted, total, fmt.Errorf("prune %s: %w", e.id, err)
		}
		deleted++
		total -= e.size
	}
	if deleted == 0 {
		return 0, total, nil
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return 0, total, fmt.Errorf("prune %d activations: %w", deleted, err)
	}
	return deleted, total, nil
}
