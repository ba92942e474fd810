package activations_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/activations"
	"github.com/edgefaas/edgefaas/storage"
)

// BenchmarkRecord is the per-call part a synchronous invocation pays on
// its own goroutine (the metrics and the hand-off to the writer), in
// parallel like the API's handlers.
func BenchmarkRecord(b *testing.B) {
	s := open(b, b.TempDir())
	defer s.Close()
	r := activations.NewRecorder(activations.RecorderConfig{Store: s, PruneEvery: time.Hour})
	defer r.Close()
	ids := activations.NewIDs()
	now := time.Now()
	rec := storage.Activation{Module: "_", Function: "hello", Version: 1, Hash: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Subject: "guest", Worker: "worker@127.0.0.2", Status: storage.StatusSuccess, QueuedAt: now, StartedAt: &now, DurationMS: 0.02,
		Result: json.RawMessage(`"Hello, edge!"`), Logs: []string{}}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			a := rec
			a.ID = ids.New(now)
			r.Record(a)
		}
	})
}

// BenchmarkIDs is the id every synchronous answer carries.
func BenchmarkIDs(b *testing.B) {
	ids := activations.NewIDs()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		ids.New(now)
	}
}
