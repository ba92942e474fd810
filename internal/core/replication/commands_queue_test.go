package replication

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// everyQueue is one command of each of the queue's and cron's types
// (TestCommandsRoundTrip).
func everyQueue() []Command {
	at := time.Date(2026, 12, 7, 4, 0, 0, 123, time.UTC)
	rec := storage.Activation{ID: "01a", Module: "m", Function: "f", Subject: "alice", Async: true, Status: storage.StatusQueued, QueuedAt: at, Logs: []string{}}
	call := storage.QueuedCall{Module: "m", Function: "f", Subject: "alice", Args: json.RawMessage(`{"n":1}`), FunctionID: "id2"}
	st := storage.CronState{Module: "m", Function: "f", LastTick: at, Missed: 2}
	done := rec
	done.Status, done.Result = storage.StatusSuccess, json.RawMessage(`{"ok":true}`)
	return []Command{
		EnqueueActivation{Record: rec, Call: call},
		WriteActivations{Records: []storage.Activation{done}},
		EnqueueCronTick{Record: rec, Call: call, Key: "k", State: st},
		InitCronState{Key: "k", State: st},
		ShiftCronState{Key: "k", From: at, To: at.Add(time.Hour)},
	}
}

// TestCronTickOnceThroughAFollower: a cron tick and an asynchronous call
// written through a follower reach every member; the same tick proposed
// again (a deposed leader's late tick) is refused with ErrTickDone across
// the wire and queues nothing; InitCronState answers the state in force.
func TestCronTickOnceThroughAFollower(t *testing.T) {
	members := startTLSGroup(t, 3)
	fo := follower(t, members)
	at := time.Date(2026, 12, 7, 4, 0, 1, 0, time.UTC)
	initState := func(last time.Time) storage.CronState {
		t.Helper()
		v, err := propose(t, fo, InitCronState{Key: "k", State: storage.CronState{Module: "m", Function: "f", LastTick: last}})
		st, ok := v.(storage.CronState)
		if err != nil || !ok {
			t.Fatalf("InitCronState: %#v %v", v, err)
		}
		return st
	}
	if st := initState(at); !st.LastTick.Equal(at) {
		t.Fatalf("InitCronState: %+v", st)
	}
	call := storage.QueuedCall{Module: "m", Function: "f", Subject: "alice", Args: json.RawMessage(`{}`)}
	tick := func(id string, last time.Time) error {
		rec := storage.Activation{ID: id, Module: "m", Function: "f", Subject: "alice", Async: true, Status: storage.StatusQueued, QueuedAt: last}
		_, err := propose(t, fo, EnqueueCronTick{Record: rec, Call: call, Key: "k", State: storage.CronState{Module: "m", Function: "f", LastTick: last}})
		return err
	}
	// Tried again after an election, the first may answer that it was
	// applied (ErrTickDone); the store says which below.
	if err := tick("01a", at.Add(time.Second)); err != nil && !errors.Is(err, storage.ErrTickDone) {
		t.Fatal(err)
	}
	if err := tick("01b", at.Add(time.Second)); !errors.Is(err, storage.ErrTickDone) {
		t.Fatalf("the same tick again: %v, want ErrTickDone", err)
	}
	if st := initState(at.Add(time.Hour)); !st.LastTick.Equal(at.Add(time.Second)) {
		t.Fatalf("InitCronState over a state: %+v, want the last tick", st)
	}
	rec := storage.Activation{ID: "01c", Module: "m", Function: "f", Subject: "alice", Async: true, Status: storage.StatusQueued, QueuedAt: at}
	if _, err := propose(t, fo, EnqueueActivation{Record: rec, Call: call}); err != nil {
		t.Fatal(err)
	}
	rec.Status = storage.StatusSuccess
	if _, err := propose(t, fo, WriteActivations{Records: []storage.Activation{rec}}); err != nil {
		t.Fatal(err)
	}
	for _, tm := range members {
		wait.For(t, limit, string(tm.id)+" to hold the tick and the ended call", func() bool {
			q, err := tm.store.QueuedActivations()
			if err != nil || len(q) != 1 || q[0].Record.ID != "01a" {
				return false
			}
			a, err := tm.store.GetActivation("01c")
			_, gone := tm.store.GetActivation("01b")
			return err == nil && a.Status == storage.StatusSuccess && errors.Is(gone, storage.ErrNotFound)
		})
	}
}
