package replication

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// everyQueue is one command of each of the queue's and cron's types.
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

// TestQueueCommandsRoundTrip: each queue and cron command decodes to
// itself, encodes to the same bytes twice, and has an op no other
// command has.
func TestQueueCommandsRoundTrip(t *testing.T) {
	ops := map[op]string{}
	for _, c := range every(t) {
		ops[c.op()] = fmt.Sprintf("%T", c)
	}
	for _, c := range everyQueue() {
		if other, ok := ops[c.op()]; ok {
			t.Fatalf("%T and %s share op %d", c, other, c.op())
		}
		ops[c.op()] = fmt.Sprintf("%T", c)
		b, err := Encode(c)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		b2, _ := Encode(c)
		if !bytes.Equal(b, b2) {
			t.Errorf("%T: two encodings differ", c)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("%T: decoded\n%+v\nwant\n%+v", c, got, c)
		}
	}
}

// TestCronTickOnceThroughAFollower: a cron tick and an asynchronous call
// written through a follower reach every member; the same tick proposed
// again (a deposed leader's late tick) is refused with ErrTickDone across
// the wire and queues nothing; InitCronState answers the state in force.
func TestCronTickOnceThroughAFollower(t *testing.T) {
	members := startTLSGroup(t, 3)
	fo := follower(t, members)
	w := fo.m.Writes()
	at := time.Date(2026, 12, 7, 4, 0, 1, 0, time.UTC)
	st, err := w.InitCronState("k", storage.CronState{Module: "m", Function: "f", LastTick: at})
	if err != nil || !st.LastTick.Equal(at) {
		t.Fatalf("InitCronState: %+v %v", st, err)
	}
	call := storage.QueuedCall{Module: "m", Function: "f", Subject: "alice", Args: json.RawMessage(`{}`)}
	tick := func(id string, last time.Time) error {
		rec := storage.Activation{ID: id, Module: "m", Function: "f", Subject: "alice", Async: true, Status: storage.StatusQueued, QueuedAt: last}
		return w.EnqueueCronTick(rec, call, "k", storage.CronState{Module: "m", Function: "f", LastTick: last})
	}
	if err := tick("01a", at.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := tick("01b", at.Add(time.Second)); !errors.Is(err, storage.ErrTickDone) {
		t.Fatalf("the same tick again: %v, want ErrTickDone", err)
	}
	if st, err := w.InitCronState("k", storage.CronState{Module: "m", Function: "f", LastTick: at.Add(time.Hour)}); err != nil || !st.LastTick.Equal(at.Add(time.Second)) {
		t.Fatalf("InitCronState over a state: %+v %v, want the last tick", st, err)
	}
	rec := storage.Activation{ID: "01c", Module: "m", Function: "f", Subject: "alice", Async: true, Status: storage.StatusQueued, QueuedAt: at}
	if err := w.EnqueueActivation(rec, call); err != nil {
		t.Fatal(err)
	}
	rec.Status = storage.StatusSuccess
	if err := w.WriteActivations([]storage.Activation{rec}); err != nil {
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
