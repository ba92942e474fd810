package activations_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/activations"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestNoWorkerLeavesArgsOnDisk: calls that no worker can take (their
// function's tag is nobody's) are tried again and again until MaxWait;
// each try must not read their args from the store. A tenant queuing 4 MiB
// calls to such a function had the core decode every call's args at every
// try, hundreds of megabytes a second, and its neighbours' calls slowed
// 80-fold.
func TestNoWorkerLeavesArgsOnDisk(t *testing.T) {
	const calls = 3
	s := open(t, t.TempDir())
	defer s.Close()
	rec := activations.NewRecorder(activations.RecorderConfig{Store: s})
	defer rec.Close()
	q := activations.NewQueue(activations.QueueConfig{Store: s, Recorder: rec, MaxWait: time.Hour,
		Run: func(_ context.Context, a storage.Activation, _ storage.QueuedCall, args activations.ArgsFunc) activations.Outcome {
			a.Status = storage.StatusNoWorker
			return activations.Outcome{Record: a}
		}})
	if err := q.Start(); err != nil {
		t.Fatal(err)
	}
	defer q.Stop(context.Background())
	args, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", 1<<20)})
	ids := activations.NewIDs()
	for range calls {
		if err := q.Submit(storage.Activation{ID: ids.New(time.Now()), Module: "m", Function: "nowhere", QueuedAt: time.Now()},
			storage.QueuedCall{Module: "m", Function: "nowhere", Subject: "s", Args: args}); err != nil {
			t.Fatal(err)
		}
	}
	// Three tries each: the first, and two after their back-off.
	wait.ForState(t, 30*time.Second, "tries of the calls", func() (bool, string) {
		return q.Attempts() >= 3*calls, fmt.Sprintf("%d tries", q.Attempts())
	})
	if read := q.ArgsRead(); read != 0 {
		t.Errorf("%d tries of %d calls no worker could take read their args %d times; want 0", q.Attempts(), calls, read)
	}
}
