package storage

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Sink types.
const (
	SinkCouchDB = "couchdb"
	SinkWebhook = "webhook"
	SinkMQTT    = "mqtt"
	// SinkCallback is an asynchronous call's completion callback: its
	// finished record POSTed to the call's callback URL. It rides the
	// same outbox and dispatcher as the function's sinks but is not one
	// of them: it is never listed in the record's "sinks".
	SinkCallback = "callback"
)

// Sink delivery statuses, per sink of an activation.
const (
	SinkPending   = "pending"
	SinkDelivered = "delivered"
	SinkFailed    = "failed"
)

// Sink is one destination a function's successful results are delivered
// to, in FunLess's shape {"type","params"}; validated by package sinks
// before it is stored. Params may hold secrets (passwords, webhook
// secrets and headers): the API redacts them when it shows the function.
type Sink struct {
	Type   string     `json:"type"`
	Params SinkParams `json:"params"`
}

// SinkParams are the parameters of a Sink; which ones apply depends on its
// type (see package sinks).
type SinkParams struct {
	URL      string            `json:"url,omitempty"`
	Username string            `json:"username,omitempty"`
	Password string            `json:"password,omitempty"`
	Headers  map[string]string `json:"headers,omitempty"`
	Secret   string            `json:"secret,omitempty"`
	Host     string            `json:"host,omitempty"`
	Port     int               `json:"port,omitempty"`
	Topic    string            `json:"topic,omitempty"`
	Retain   bool              `json:"retain,omitempty"`
	TLS      bool              `json:"tls,omitempty"`
	// Sealed holds, at rest and in a core group's log entries only, the
	// secrets above (password, secret, headers, the URL's query) sealed by
	// the Store (secrets.go); records read from the Store never have it.
	Sealed string `json:"sealed,omitempty"`
}

// SinkDelivery is where delivering one activation's result to one sink
// stands; activation records list one per sink of the function, so that
// failures are visible through the API. Target never holds a secret.
type SinkDelivery struct {
	Type        string     `json:"type"`
	Target      string     `json:"target"`
	Status      string     `json:"status"`
	Attempts    int        `json:"attempts"`
	LastError   string     `json:"last_error,omitempty"`
	DeliveredAt *time.Time `json:"delivered_at,omitempty"`
}

// SinkJob is a finished activation's result waiting for delivery to the
// sinks its function had when it finished, kept under o/<activation id>
// (the outbox) until every delivery is final, so deliveries survive a
// restart of the core.
type SinkJob struct {
	ID         string          `json:"id"`
	Module     string          `json:"module"`
	Function   string          `json:"function"`
	Subject    string          `json:"subject"`
	Owner      string          `json:"owner,omitempty"` // the function's owner, whose egress bound applies
	FinishedAt time.Time       `json:"finished_at"`
	Result     json.RawMessage `json:"result"`
	Sinks      []Sink          `json:"sinks"`
	Deliveries []SinkDelivery  `json:"deliveries"`
	// Callback is the body of the SinkCallback delivery ({"data": record}),
	// when the job has one; the sinks' deliveries send Result.
	Callback json.RawMessage `json:"callback,omitempty"`
}

// RecordSinks is the record's view of j's deliveries: the function's
// sinks, without the completion callback.
func (j *SinkJob) RecordSinks() []SinkDelivery {
	var out []SinkDelivery
	for _, d := range j.Deliveries {
		if d.Type != SinkCallback {
			out = append(out, d)
		}
	}
	return out
}

// Done reports whether every delivery of j is final.
func (j *SinkJob) Done() bool {
	for _, d := range j.Deliveries {
		if d.Status == SinkPending {
			return false
		}
	}
	return true
}

// WriteActivationsWithSinks is WriteActivations plus the outbox entries of
// finished activations whose results go to sinks, in the same batch: a
// record that says "pending" always has its outbox entry.
func (s *Store) WriteActivationsWithSinks(recs []Activation, jobs []SinkJob, sync bool) error {
	if len(recs) == 0 && len(jobs) == 0 {
		return nil
	}
	s.sealMu.RLock() // a rotation does not pass this job by meanwhile
	defer s.sealMu.RUnlock()
	b := s.db.NewBatch()
	defer b.Close()
	if err := addActivations(b, recs); err != nil {
		return err
	}
	for i := range jobs {
		if err := s.setJSON(b, keyOutbox(jobs[i].ID), jobs[i]); err != nil {
			return err
		}
	}
	opt := pebble.NoSync
	if sync {
		opt = s.syncOpt()
	}
	if err := s.guard.admit(b.Len()); err != nil {
		return fmt.Errorf("write %d activations and %d sink jobs: %w", len(recs), len(jobs), err)
	}
	if err := b.Commit(opt); err != nil {
		return fmt.Errorf("write %d activations and %d sink jobs: %w", len(recs), len(jobs), err)
	}
	return nil
}

// UpdateSinkJob stores j's delivery state: in its outbox entry (deleted
// once every delivery is final) and in its activation record's "sinks",
// in one batch committed with pebble.Sync (pebble loses NoSync batches to
// a kill -9: a delivered result would be sent again, a refused one tried
// again). A record already pruned is not written again.
func (s *Store) UpdateSinkJob(j SinkJob) error {
	s.sealMu.RLock()
	defer s.sealMu.RUnlock()
	b := s.db.NewBatch()
	defer b.Close()
	if j.Done() {
		if err := b.Delete(keyOutbox(j.ID), nil); err != nil {
			return err
		}
	} else if err := s.setJSON(b, keyOutbox(j.ID), j); err != nil {
		return err
	}
	rec, err := s.GetActivation(j.ID)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return err
	default:
		rec.Sinks = j.RecordSinks()
		if err := s.setJSON(b, keyActivation(j.ID), rec); err != nil {
			return err
		}
	}
	if !j.Done() { // a finished job frees its outbox entry
		if err := s.guard.admit(b.Len()); err != nil {
			return fmt.Errorf("update sink deliveries of %s: %w", j.ID, err)
		}
	}
	if err := b.Commit(s.syncOpt()); err != nil {
		return fmt.Errorf("update sink deliveries of %s: %w", j.ID, err)
	}
	return nil
}

// SinkJobs lists the outbox, oldest first: what a restarted core still
// has to deliver.
func (s *Store) SinkJobs() ([]SinkJob, error) {
	return listJSON[SinkJob](s, prefixOutbox) // opened by listJSON
}
