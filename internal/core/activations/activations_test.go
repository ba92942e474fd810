package activations_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/activations"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

func open(t testing.TB, dir string) *storage.Store {
	t.Helper()
	s, err := storage.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestIDsSortByTime(t *testing.T) {
	g := activations.NewIDs()
	now := time.Now()
	prev := ""
	for i := range 10000 {
		// The clock stepping back must not reorder ids.
		id := g.New(now.Add(time.Duration(i%7-3) * time.Millisecond))
		if id <= prev {
			t.Fatalf("id %d %s not after %s", i, id, prev)
		}
		prev = id
	}
	tm, ok := activations.IDTime(prev)
	if !ok || tm.Sub(now) > 5*time.Millisecond || now.Sub(tm) > 5*time.Millisecond {
		t.Fatalf("IDTime %v %v, made at %v", tm, ok, now)
	}
	if activations.ValidID("nope") {
		t.Fatal("nope is an id")
	}
}

// record waits until id's record is final.
func waitFinal(t *testing.T, s *storage.Store, id string) storage.Activation {
	t.Helper()
	var a storage.Activation
	wait.For(t, 30*time.Second, id+" final", func() bool {
		var err error
		a, err = s.GetActivation(id)
		return err == nil && storage.FinalStatus(a.Status)
	})
	return a
}

// TestQueueOrderLimitsFull: oldest first, never more than PerFunction of a
// function at once, 429-style ErrFull beyond MaxQueued, one final record each.
func TestQueueOrderLimitsFull(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	rec := activations.NewRecorder(activations.RecorderConfig{Store: s})
	defer rec.Close()
	var running, peak atomic.Int32
	var mu sync.Mutex
	var started []storage.Activation
	release := make(chan struct{})
	q := activations.NewQueue(activations.QueueConfig{Store: s, Recorder: rec, PerFunction: 2, MaxInFlight: 8, MaxQueued: 50,
		Run: func(_ context.Context, a storage.Activation, c storage.QueuedCall, args activations.ArgsFunc) activations.Outcome {
			n := running.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			mu.Lock()
			started = append(started, a)
			mu.Unlock()
			<-release
			running.Add(-1)
			a.Status = storage.StatusSuccess
			a.Result, _ = args()
			return activations.Outcome{Record: a}
		}})
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	defer q.Stop(context.Background())
	ids := activations.NewIDs()
	var want []string
	for i := range 50 {
		id := ids.New(time.Now())
		want = append(want, id)
		err := q.Submit(storage.Activation{ID: id, Module: "m", Function: "f", QueuedAt: time.Now()},
			storage.QueuedCall{Module: "m", Function: "f", Subject: "s", Args: json.RawMessage(fmt.Sprint(i))})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Submit(storage.Activation{ID: ids.New(time.Now())}, storage.QueuedCall{Module: "m", Function: "f"}); !errors.Is(err, activations.ErrFull) {
		t.Fatalf("51st submit: %v", err)
	}
	close(release)
	for i, id := range want {
		a := waitFinal(t, s, id)
		if a.Status != storage.StatusSuccess || string(a.Result) != fmt.Sprint(i) || a.Attempts != 1 {
			t.Fatalf("%d: %+v", i, a)
		}
	}
	if p := peak.Load(); p > 2 {
		t.Fatalf("%d ran at once, limit 2", p)
	}
	// Started oldest first (two at a time, so neighbours may swap). The
	// queue stamps StartedAt as it dispatches, before the call's goroutine
	// runs: the order of entering Run also depends on the Go scheduler (a
	// goroutine delayed while the other slot ran eight calls was seen).
	sort.SliceStable(started, func(i, j int) bool { return started[i].StartedAt.Before(*started[j].StartedAt) })
	order := make([]string, len(started))
	for i, a := range started {
		order[i] = a.ID
	}
	for i, id := range order {
		j := 0
		for want[j] != id {
			j++
		}
		if j > i+2 || j < i-2 {
			t.Fatalf("the %dth started was submitted %dth", i, j)
		}
	}
	if left, _ := s.QueuedActivations(); len(left) != 0 {
		t.Fatalf("%d still queued", len(left))
	}
}

// TestQueueRecovery: on start, queued activations run, running ones end
// lost (or run again when the function is idempotent).
func TestQueueRecovery(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if _, err := s.CreateFunction(storage.Module{Name: storage.DefaultModule}, storage.NewFunction{Name: "idem", Owner: "s", Code: []byte("\x00asm"), ABI: "funless", Metadata: storage.Metadata{Idempotent: true}}); err != nil {
		t.Fatal(err)
	}
	ids := activations.NewIDs()
	mk := func(fn, status string) string {
		id := ids.New(time.Now())
		a := storage.Activation{ID: id, Module: "_", Function: fn, Async: true, Status: storage.StatusQueued, QueuedAt: time.Now()}
		if err := s.EnqueueActivation(a, storage.QueuedCall{Module: "_", Function: fn, Subject: "s"}); err != nil {
			t.Fatal(err)
		}
		if status == storage.StatusRunning {
			a.Status, a.Attempts = status, 1
			if err := s.WriteActivations([]storage.Activation{a}, true); err != nil {
				t.Fatal(err)
			}
		}
		return id
	}
	queued, running, idem := mk("plain", storage.StatusQueued), mk("plain", storage.StatusRunning), mk("idem", storage.StatusRunning)
	s.Close()

	s = open(t, dir)
	defer s.Close()
	rec := activations.NewRecorder(activations.RecorderConfig{Store: s})
	defer rec.Close()
	var ran sync.Map
	q := activations.NewQueue(activations.QueueConfig{Store: s, Recorder: rec, Run: func(_ context.Context, a storage.Activation, _ storage.QueuedCall, args activations.ArgsFunc) activations.Outcome {
		ran.Store(a.ID, true)
		a.Status = storage.StatusSuccess
		return activations.Outcome{Record: a}
	}})
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	defer q.Stop(context.Background())
	if a := waitFinal(t, s, queued); a.Status != storage.StatusSuccess {
		t.Fatalf("queued: %+v", a)
	}
	if a := waitFinal(t, s, running); a.Status != storage.StatusLost || a.Error == "" {
		t.Fatalf("running: %+v", a)
	}
	if a := waitFinal(t, s, idem); a.Status != storage.StatusSuccess || a.Attempts != 2 {
		t.Fatalf("idempotent running: %+v", a)
	}
	if _, ok := ran.Load(running); ok {
		t.Fatal("a call that may have run ran again")
	}
}

// TestRecorderRetention: records beyond the byte budget go oldest first;
// queued ones are kept.
func TestRecorderRetention(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	rec := activations.NewRecorder(activations.RecorderConfig{Store: s, MaxBytes: 10000, PruneEvery: time.Hour})
	defer rec.Close()
	ids := activations.NewIDs()
	keep := ids.New(time.Now().Add(-48 * time.Hour))
	if err := s.EnqueueActivation(storage.Activation{ID: keep, Status: storage.StatusQueued, Async: true}, storage.QueuedCall{}); err != nil {
		t.Fatal(err)
	}
	var all []string
	for i := range 200 {
		id := ids.New(time.Now())
		all = append(all, id)
		if err := rec.RecordWait(context.Background(), storage.Activation{ID: id, Status: storage.StatusSuccess, Logs: []string{fmt.Sprintf("line %03d %s", i, strings.Repeat("of some length ", 12))}}); err != nil {
			t.Fatal(err)
		}
	}
	deleted, err := rec.Prune()
	if err != nil || deleted == 0 {
		t.Fatalf("pruned %d, %v", deleted, err)
	}
	var left []string
	s.ScanActivations("", func(a storage.Activation) bool { left = append(left, a.ID); return true })
	if left[len(left)-1] != keep {
		t.Fatalf("the queued record was pruned")
	}
	for i, id := range left[:len(left)-1] {
		if id != all[len(all)-1-i] {
			t.Fatalf("kept %s at %d, want the newest", id, i)
		}
	}
	if len(left) < 20 || len(left) > 100 {
		t.Fatalf("%d records left", len(left))
	}
}
