package activations_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/activations"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestSubmitWith: a custom commit (a cron tick's state with its
// activation) runs the activation like Submit; its refusal is returned
// as it is and queues nothing.
func TestSubmitWith(t *testing.T) {
	s := open(t, t.TempDir())
	defer s.Close()
	rec := activations.NewRecorder(activations.RecorderConfig{Store: s})
	defer rec.Close()
	q := activations.NewQueue(activations.QueueConfig{Store: s, Recorder: rec,
		Run: func(_ context.Context, a storage.Activation, c storage.QueuedCall, args activations.ArgsFunc) activations.Outcome {
			a.Status = storage.StatusSuccess
			a.Result, _ = args()
			return activations.Outcome{Record: a}
		}})
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	defer q.Stop(context.Background())
	ids := activations.NewIDs()
	tick := time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC)
	commit := func(a storage.Activation, c storage.QueuedCall) error {
		return s.EnqueueCronTick(a, c, "k", storage.CronState{Module: "m", Function: "f", LastTick: tick})
	}
	id := ids.New(time.Now())
	call := storage.QueuedCall{Module: "m", Function: "f", Subject: "s", Args: json.RawMessage(`{"t":1}`)}
	if err := q.SubmitWith(storage.Activation{ID: id, Module: "m", Function: "f", QueuedAt: time.Now()}, call, commit); err != nil {
		t.Fatal(err)
	}
	if a := waitFinal(t, s, id); a.Status != storage.StatusSuccess || string(a.Result) != `{"t":1}` {
		t.Fatalf("%+v", a)
	}
	again := ids.New(time.Now())
	if err := q.SubmitWith(storage.Activation{ID: again, Module: "m", Function: "f", QueuedAt: time.Now()}, call, commit); !errors.Is(err, storage.ErrTickDone) {
		t.Fatalf("same tick again: %v", err)
	}
	if _, err := s.GetActivation(again); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("refused tick has a record: %v", err)
	}
	// The first one leaves the queue just after its final record.
	if err := wait.Until(context.Background(), 10*time.Second, "an empty queue", func() bool { return q.Depth() == 0 }); err != nil {
		t.Fatalf("%v: depth %d after a refused submit", err, q.Depth())
	}
}
