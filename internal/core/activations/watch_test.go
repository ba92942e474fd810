package activations_test

import (
	"context"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/activations"
	"github.com/edgefaas/edgefaas/internal/core/storage"
)

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestWatchWakesOnlyMatches: a long poll's watch on one function is not
// woken by other functions' records, is woken by its own, by any
// module's and by the catch-all key's, and Next returns the oldest id of
// the matching records committed since, even when an older id is
// committed after a newer one.
func TestWatchWakesOnlyMatches(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	rec := activations.NewRecorder(activations.RecorderConfig{Store: s, PruneEvery: time.Hour})
	defer rec.Close()
	ids := activations.NewIDs()
	record := func(module, function, id string) {
		t.Helper()
		if err := rec.RecordWait(context.Background(), storage.Activation{ID: id, Module: module, Function: function, Status: storage.StatusSuccess}); err != nil {
			t.Fatal(err)
		}
	}
	idle := rec.Watch(activations.WatchKey{Module: "_", Function: "idle"})
	defer idle.Close()
	byName := rec.Watch(activations.WatchKey{Function: "busy"})
	defer byName.Close()
	any := rec.Watch(activations.WatchKey{})
	defer any.Close()
	for range 20 {
		record("_", "busy", ids.New(time.Now()))
	}
	if closed(idle.C()) {
		t.Fatal("the idle function's watch was woken by another function's records")
	}
	if !closed(byName.C()) || !closed(any.C()) {
		t.Fatal("the watches the records match were not woken")
	}
	if byName.Next() == "" || closed(byName.C()) {
		t.Fatal("Next did not move past the commits")
	}
	older, newer := ids.New(time.Now()), ids.New(time.Now())
	record("_", "idle", newer)
	record("_", "idle", older) // a call that started first ended last
	if !closed(idle.C()) {
		t.Fatal("the idle function's watch was not woken by its record")
	}
	if got := idle.Next(); got != older {
		t.Fatalf("Next = %s; want the oldest id committed since, %s", got, older)
	}
	if closed(idle.C()) {
		t.Fatal("the watch stays woken after Next")
	}
}
