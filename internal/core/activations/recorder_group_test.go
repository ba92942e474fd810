package activations_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/activations"
	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// entryLog is a core group's log as the recorder sees it: each entry it
// takes is applied to the member's store, as the group's state machine
// does; while refusing it answers as a group without a majority does.
type entryLog struct {
	s *storage.Store

	mu      sync.Mutex
	entries [][]storage.Activation
	refuse  bool
}

func (g *entryLog) WriteActivations(recs []storage.Activation) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refuse {
		return errors.New("write: no leader")
	}
	g.entries = append(g.entries, append([]storage.Activation(nil), recs...))
	return g.s.WriteActivations(recs, true)
}

// logged returns the ids in the log's entries, and each entry's size.
func (g *entryLog) logged(t *testing.T) (ids map[string]bool, sizes []int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ids = map[string]bool{}
	for _, e := range g.entries {
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(b))
		for _, a := range e {
			ids[a.ID] = true
		}
	}
	return ids, sizes
}

type outbox struct {
	mu        sync.Mutex
	committed []string
}

func (o *outbox) Committed(jobs []storage.SinkJob) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, j := range jobs {
		o.committed = append(o.committed, j.ID)
	}
}

func (o *outbox) Dropped(storage.SinkJob) {}

// TestRecorderThroughGroupLog: in a core group, the records of
// synchronous calls go through the log in entries of at most
// LogEntryBytes; a record the queue committed already (RecordWait) and a
// record with sink jobs (the outbox is per core) are written here only;
// records the log refuses are written here, none lost.
func TestRecorderThroughGroupLog(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	g := &entryLog{s: s}
	sinks := &outbox{}
	rec := activations.NewRecorder(activations.RecorderConfig{Store: s, Group: g, Sinks: sinks, PruneEvery: time.Hour})
	defer rec.Close()
	ids := activations.NewIDs()
	record := func(logBytes int) storage.Activation {
		return storage.Activation{ID: ids.New(time.Now()), Module: "m", Function: "f", Status: storage.StatusSuccess,
			Result: json.RawMessage(`{"ok":true}`), Logs: []string{strings.Repeat("x", logBytes)}}
	}
	// flushed waits for the records given before it: RecordWait's batch
	// is committed after theirs.
	flushed := func() storage.Activation {
		t.Helper()
		a := record(10)
		if err := rec.RecordWait(context.Background(), a); err != nil {
			t.Fatal(err)
		}
		return a
	}

	var sync []storage.Activation
	for range 6 {
		a := record(activations.LogEntryBytes * 2 / 5)
		sync = append(sync, a)
		rec.Record(a)
	}
	withSinks := record(10)
	rec.RecordWithSinks(withSinks, &storage.SinkJob{ID: withSinks.ID, Module: "m", Function: "f"})
	waited := flushed()

	logged, sizes := g.logged(t)
	for _, a := range sync {
		if !logged[a.ID] {
			t.Errorf("record %s of a synchronous call not in the log", a.ID)
		}
	}
	if len(sizes) < 3 {
		t.Errorf("six records of %d bytes of logs in %d entries", activations.LogEntryBytes*2/5, len(sizes))
	}
	for _, n := range sizes {
		if n > activations.LogEntryBytes+activations.LogEntryBytes/16 {
			t.Errorf("an entry of %d bytes, beyond %d", n, activations.LogEntryBytes)
		}
	}
	for _, a := range []storage.Activation{withSinks, waited} {
		if logged[a.ID] {
			t.Errorf("record %s in the log; it stays on this core", a.ID)
		}
	}
	sinks.mu.Lock()
	if len(sinks.committed) != 1 || sinks.committed[0] != withSinks.ID {
		t.Errorf("sink jobs committed: %v, want [%s]", sinks.committed, withSinks.ID)
	}
	sinks.mu.Unlock()

	// Without a majority: written here, none lost.
	g.mu.Lock()
	g.refuse = true
	g.mu.Unlock()
	alone := record(10)
	rec.Record(alone)
	flushed()
	if logged, _ := g.logged(t); logged[alone.ID] {
		t.Fatalf("a refused record in the log")
	}

	for _, a := range append(sync, withSinks, waited, alone) {
		got, err := s.GetActivation(a.ID)
		if err != nil || got.Status != storage.StatusSuccess {
			t.Errorf("record %s in the store: %+v, %v", a.ID, got.Status, err)
		}
	}
}
