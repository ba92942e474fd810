package storage

import (
	"errors"
	"testing"
	"time"
)

// TestEnqueueCronTickIdempotent: a tick's activation and the trigger's
// state commit together; the same (or an older) tick again writes nothing;
// the state survives a reopen.
func TestEnqueueCronTickIdempotent(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st, err := s.InitCronState("k", CronState{Module: "m", Function: "f", LastTick: t0})
	if err != nil || !st.LastTick.Equal(t0) {
		t.Fatal(st, err)
	}
	if st, _ := s.InitCronState("k", CronState{Module: "m", Function: "f", LastTick: t0.Add(time.Hour)}); !st.LastTick.Equal(t0) {
		t.Fatal("init replaced an existing state")
	}
	tick := t0.Add(time.Second)
	rec := Activation{ID: "01AAAAAAAAAAAAAAAAAAAAAAAA", Module: "m", Function: "f", Status: StatusQueued, Async: true}
	call := QueuedCall{Module: "m", Function: "f", Subject: "s", Args: []byte("{}")}
	if err := s.EnqueueCronTick(rec, call, "k", CronState{Module: "m", Function: "f", LastTick: tick}); err != nil {
		t.Fatal(err)
	}
	rec2 := rec
	rec2.ID = "01AAAAAAAAAAAAAAAAAAAAAAAB"
	for _, again := range []time.Time{tick, t0} {
		if err := s.EnqueueCronTick(rec2, call, "k", CronState{Module: "m", Function: "f", LastTick: again}); !errors.Is(err, ErrTickDone) {
			t.Fatalf("tick %v again: %v", again, err)
		}
	}
	if _, err := s.GetActivation(rec2.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused tick wrote its record: %v", err)
	}
	s.Close()
	s, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err = s.GetCronState("k")
	if err != nil || !st.LastTick.Equal(tick) {
		t.Fatalf("after reopen: %+v %v", st, err)
	}
	q, err := s.QueuedActivations()
	if err != nil || len(q) != 1 || q[0].Record.ID != rec.ID {
		t.Fatalf("queued %+v %v", q, err)
	}
	if err := s.DeleteCronStates("m", "f", map[string]bool{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetCronState("k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("state kept after delete: %v", err)
	}
}

// TestShiftCronState: after the wall clock stepped back, a tick before
// the stored one is refused until the state is shifted back with the
// clock; a shift from a state that changed meanwhile writes nothing.
func TestShiftCronState(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	if _, err := s.InitCronState("k", CronState{Module: "m", Function: "f", LastTick: t0, Missed: 2}); err != nil {
		t.Fatal(err)
	}
	back := t0.Add(-time.Hour)
	rec := Activation{ID: "01AAAAAAAAAAAAAAAAAAAAAAAA", Module: "m", Function: "f", Status: StatusQueued, Async: true}
	call := QueuedCall{Module: "m", Function: "f", Subject: "s", Args: []byte("{}")}
	tick := back.Add(time.Minute)
	if err := s.EnqueueCronTick(rec, call, "k", CronState{Module: "m", Function: "f", LastTick: tick}); !errors.Is(err, ErrTickDone) {
		t.Fatalf("a tick before the stored one: %v", err)
	}
	if err := s.ShiftCronState("k", t0.Add(time.Second), back); !errors.Is(err, ErrTickDone) {
		t.Fatalf("a shift from another state: %v", err)
	}
	if err := s.ShiftCronState("k", t0, back); err != nil {
		t.Fatal(err)
	}
	if st, err := s.GetCronState("k"); err != nil || !st.LastTick.Equal(back) || st.Missed != 2 || st.Module != "m" {
		t.Fatalf("shifted state %+v %v", st, err)
	}
	if err := s.EnqueueCronTick(rec, call, "k", CronState{Module: "m", Function: "f", LastTick: tick}); err != nil {
		t.Fatalf("the tick after the shift: %v", err)
	}
}
