package activations

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// BenchmarkRecord is the per-call part a synchronous invocation pays on
// its own goroutine: its id, the metrics and the hand-off to the writer.
// No writer runs (its own work, encoding and pebble, is
// storage.BenchmarkWriteActivations): the pending slice is emptied
// between chunks, as the writer does every FlushEvery.
func BenchmarkRecord(b *testing.B) {
	const chunk = 256
	r := &Recorder{cfg: RecorderConfig{Metrics: NewMetrics(0), Buffer: chunk}, wake: make(chan struct{}, 1),
		pending: make([]storage.Activation, 0, chunk)}
	ids := NewIDs()
	now := time.Now()
	rec := storage.Activation{Module: "_", Function: "hello", Version: 1, Hash: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Subject: "guest", Worker: "worker@127.0.0.2", Status: storage.StatusSuccess, QueuedAt: now, StartedAt: &now, DurationMS: 0.02,
		Result: json.RawMessage(`"Hello, edge!"`), Logs: []string{}}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		a := rec
		a.ID = ids.New(now)
		r.Record(a)
		if i%chunk == chunk-1 {
			r.mu.Lock()
			clear(r.pending)
			r.pending = r.pending[:0]
			r.mu.Unlock()
			<-r.wake
		}
	}
}
