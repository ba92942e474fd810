package sinks

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/testing/storetest"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestCallbackPoolBounded: completion callbacks to a receiver that hangs
// take at most the pool's slots, and one subject at most half of them:
// another subject's callback, admitted after the hung ones, goes through
// meanwhile. Past the subject's backlog bound a callback is refused and
// counted. Once the receiver answers, every admitted callback is
// delivered and the outbox is empty.
func TestCallbackPoolBounded(t *testing.T) {
	const pool, backlogMax = 4, 30
	st := storetest.Open(t, filepath.Join(t.TempDir(), "db"), slog.New(slog.DiscardHandler))
	release := make(chan struct{})
	var mu sync.Mutex
	inFlight, maxInFlight := map[string]int{}, map[string]int{}
	total, maxTotal := 0, 0
	delivered := map[string]int{}
	d := New(Config{Store: st, Concurrency: pool, PerSubjectCallbacks: backlogMax,
		Callback: func(ctx context.Context, url string, body []byte) error {
			subject := url[len("http://hooks.test/"):]
			mu.Lock()
			inFlight[subject]++
			total++
			maxInFlight[subject] = max(maxInFlight[subject], inFlight[subject])
			maxTotal = max(maxTotal, total)
			mu.Unlock()
			if subject == "slow" {
				<-release
			}
			mu.Lock()
			inFlight[subject]--
			total--
			delivered[subject]++
			mu.Unlock()
			return nil
		}})
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Stop(context.Background())

	admit := func(i int, subject string) bool {
		t.Helper()
		rec := storage.Activation{ID: fmt.Sprintf("01J%023d", i), Module: "_", Function: "f", Subject: subject, Status: storage.StatusSuccess, Async: true}
		job := d.AdmitCallback(rec, "http://hooks.test/"+subject, nil)
		if job == nil {
			return false
		}
		if err := st.WriteActivationsWithSinks([]storage.Activation{rec}, []storage.SinkJob{*job}, true); err != nil {
			t.Fatal(err)
		}
		d.Committed([]storage.SinkJob{*job})
		return true
	}
	for i := range backlogMax {
		if !admit(i, "slow") {
			t.Fatalf("callback %d refused within the backlog", i)
		}
	}
	if admit(backlogMax, "slow") {
		t.Fatal("a callback past the subject's backlog was admitted")
	}
	var m dto.Metric
	if err := d.refused.Write(&m); err != nil || m.GetCounter().GetValue() != 1 {
		t.Fatalf("refused counter %v (%v), want 1", m.GetCounter().GetValue(), err)
	}
	if !admit(backlogMax+1, "other") {
		t.Fatal("another subject's callback refused")
	}
	// The other subject's callback is due after every hung one: once it
	// is delivered, each of those has had its turn at a slot; the hung
	// subject holds its half of the pool.
	if err := wait.Until(context.Background(), 30*time.Second, "the other subject's callback beside the hung ones", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return delivered["other"] == 1 && inFlight["slow"] == (pool+1)/2
	}); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := wait.Until(context.Background(), 30*time.Second, "every callback delivered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return delivered["slow"] == backlogMax
	}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if maxInFlight["slow"] > (pool+1)/2 || maxTotal > pool {
		t.Errorf("at most %d deliveries at once (%d of one subject), want at most %d (%d)", maxTotal, maxInFlight["slow"], pool, (pool+1)/2)
	}
	if err := wait.Until(context.Background(), 30*time.Second, "an empty outbox", func() bool {
		jobs, err := st.SinkJobs()
		return err == nil && len(jobs) == 0
	}); err != nil {
		t.Fatal(err)
	}
	if r, err := st.GetActivation(fmt.Sprintf("01J%023d", 0)); err != nil || len(r.Sinks) != 0 {
		t.Errorf("a callback is listed in the record's sinks: %+v, %v", r.Sinks, err)
	}
}
