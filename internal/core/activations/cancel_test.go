package activations_test

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/activations"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestCancel: Cancel ends one subject's calls and no other's. The
// waiting ones end at once without running; the running one has its
// context canceled and ends canceled whatever its run gave. No callback
// goes out for them; the other subject's call runs and calls back.
func TestCancel(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	rec := activations.NewRecorder(activations.RecorderConfig{Store: s})
	defer rec.Close()
	started := make(chan string, 16)
	var runs atomic.Int64
	var callbacks = make(chan string, 16)
	q := activations.NewQueue(activations.QueueConfig{Store: s, Recorder: rec, PerSubject: 1,
		Run: func(ctx context.Context, a storage.Activation, c storage.QueuedCall, args activations.ArgsFunc) activations.Outcome {
			runs.Add(1)
			started <- a.ID
			if c.Subject == "alice" {
				<-ctx.Done() // runs until canceled
			}
			a.Status, a.Result = storage.StatusSuccess, json.RawMessage(`{}`)
			return activations.Outcome{Record: a}
		},
		Callbacks: callbackFunc(func(_ storage.Activation, url string, job *storage.SinkJob) *storage.SinkJob {
			callbacks <- url
			return job
		}),
	})
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	defer q.Stop(context.Background())
	ids := activations.NewIDs()
	submit := func(subject string) string {
		t.Helper()
		id := ids.New(time.Now())
		call := storage.QueuedCall{Module: "m", Function: "f", Subject: subject, Args: json.RawMessage(`{}`), Callback: "http://x/" + subject}
		if err := q.Submit(storage.Activation{ID: id, Module: "m", Function: "f", Subject: subject, QueuedAt: time.Now()}, call); err != nil {
			t.Fatal(err)
		}
		return id
	}
	running := submit("alice")
	if got := <-started; got != running {
		t.Fatalf("started %s, want %s", got, running)
	}
	// One call per subject at a time: these wait behind the running one.
	waiting := []string{submit("alice"), submit("alice")}
	n, err := q.Cancel(func(c storage.QueuedCall) bool { return c.Subject == "alice" }, "canceled: subject \"alice\" was revoked")
	if err != nil || n != 3 {
		t.Fatalf("Cancel = %d, %v; want 3", n, err)
	}
	for _, id := range append(waiting, running) {
		if a := waitFinal(t, s, id); a.Status != storage.StatusCanceled || a.Error != `canceled: subject "alice" was revoked` || a.Result != nil {
			t.Errorf("%s: %+v", id, a)
		}
	}
	bob := submit("bob")
	if a := waitFinal(t, s, bob); a.Status != storage.StatusSuccess {
		t.Fatalf("bob's call: %+v", a)
	}
	if got := <-callbacks; got != "http://x/bob" {
		t.Fatalf("callback to %s, want bob's only", got)
	}
	if err := wait.Until(context.Background(), 10*time.Second, "an empty queue", func() bool { return q.Depth() == 0 }); err != nil {
		t.Fatal(err)
	}
	if r := runs.Load(); r != 2 {
		t.Fatalf("%d runs, want 2 (alice's first, bob's)", r)
	}
	select {
	case url := <-callbacks:
		t.Fatalf("a second callback, to %s", url)
	default:
	}
}

// callbackFunc is an activations.CallbackOutbox that calls itself.
type callbackFunc func(rec storage.Activation, url string, job *storage.SinkJob) *storage.SinkJob

func (f callbackFunc) AdmitCallback(rec storage.Activation, url string, job *storage.SinkJob) *storage.SinkJob {
	return f(rec, url, job)
}

func (callbackFunc) Committed([]storage.SinkJob) {}
func (callbackFunc) Dropped(storage.SinkJob)     {}

// TestLostCallCalledBack: a call the core stopped while it ran ends lost
// at the next start, and its callback goes to the outbox with that final
// record, in the same commit: its caller hears of the end as of any other.
func TestLostCallCalledBack(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	id := activations.NewIDs().New(time.Now())
	a := storage.Activation{ID: id, Module: "_", Function: "f", Subject: "s", Async: true, Status: storage.StatusQueued, QueuedAt: time.Now()}
	if err := s.EnqueueActivation(a, storage.QueuedCall{Module: "_", Function: "f", Subject: "s", Callback: "http://x/done"}); err != nil {
		t.Fatal(err)
	}
	a.Status, a.Attempts = storage.StatusRunning, 1
	if err := s.WriteActivations([]storage.Activation{a}, true); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = open(t, dir)
	defer s.Close()
	rec := activations.NewRecorder(activations.RecorderConfig{Store: s})
	defer rec.Close()
	var admitted []storage.Activation
	var committed []storage.SinkJob
	outbox := recordingOutbox{
		admit: func(r storage.Activation, url string, _ *storage.SinkJob) *storage.SinkJob {
			admitted = append(admitted, r)
			d := storage.SinkDelivery{Type: storage.SinkCallback, Status: storage.SinkPending}
			return &storage.SinkJob{ID: r.ID, Subject: r.Subject, Callback: []byte(`{}`),
				Sinks: []storage.Sink{{Type: storage.SinkCallback, Params: storage.SinkParams{URL: url}}}, Deliveries: []storage.SinkDelivery{d}}
		},
		committed: func(jobs []storage.SinkJob) { committed = append(committed, jobs...) },
	}
	q := activations.NewQueue(activations.QueueConfig{Store: s, Recorder: rec, Callbacks: outbox,
		Run: func(_ context.Context, a storage.Activation, _ storage.QueuedCall, args activations.ArgsFunc) activations.Outcome {
			t.Error("a call that may have run ran again")
			return activations.Outcome{Record: a}
		}})
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	defer q.Stop(context.Background())
	if len(admitted) != 1 || admitted[0].ID != id || admitted[0].Status != storage.StatusLost {
		t.Fatalf("callbacks admitted at start: %+v", admitted)
	}
	if len(committed) != 1 || committed[0].ID != id {
		t.Fatalf("callbacks committed at start: %+v", committed)
	}
	jobs, err := s.SinkJobs()
	if err != nil || len(jobs) != 1 || jobs[0].ID != id || jobs[0].Sinks[0].Params.URL != "http://x/done" {
		t.Fatalf("outbox %+v, %v", jobs, err)
	}
	if r, err := s.GetActivation(id); err != nil || r.Status != storage.StatusLost {
		t.Fatalf("record %+v, %v", r, err)
	}
}

// recordingOutbox is an activations.CallbackOutbox of functions.
type recordingOutbox struct {
	admit     func(storage.Activation, string, *storage.SinkJob) *storage.SinkJob
	committed func([]storage.SinkJob)
}

func (o recordingOutbox) AdmitCallback(r storage.Activation, url string, job *storage.SinkJob) *storage.SinkJob {
	return o.admit(r, url, job)
}
func (o recordingOutbox) Committed(jobs []storage.SinkJob) { o.committed(jobs) }
func (recordingOutbox) Dropped(storage.SinkJob)            {}
