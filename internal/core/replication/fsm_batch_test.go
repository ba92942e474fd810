package replication

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// TestBatchSyncsOnce: a batch of committed entries costs the member's
// store one sync of its log, not one per entry, and every entry of the
// batch is applied and answered, in order, with the hooks told after.
func TestBatchSyncsOnce(t *testing.T) {
	f, store := newFSM(t)
	bf, ok := any(f).(raft.BatchingFSM)
	if !ok {
		t.Fatal("the state machine applies committed entries one at a time, each synced")
	}
	var heard []string
	f.OnApplied(func(c Command, _ any) {
		if e, ok := c.(EnqueueActivation); ok {
			heard = append(heard, e.Record.ID)
		}
	})
	const n = 16
	var logs []*raft.Log
	for i := range n {
		c := EnqueueActivation{Record: storage.Activation{ID: fmt.Sprintf("%04d", i), Module: "m", Function: "f", Async: true,
			Status: storage.StatusQueued, QueuedAt: time.Unix(1, 0).UTC()},
			Call: storage.QueuedCall{Module: "m", Function: "f", Subject: "alice", Args: json.RawMessage(`{}`)}}
		data, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, &raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: data})
	}
	// A configuration entry in the batch is answered with nothing.
	logs = append(logs, &raft.Log{Index: n + 1, Type: raft.LogConfiguration})
	before := store.WALSyncs()
	out := bf.ApplyBatch(logs)
	syncs := store.WALSyncs() - before
	if syncs != 1 {
		t.Errorf("a batch of %d entries synced the store's log %d times, want 1", n, syncs)
	}
	if len(out) != len(logs) {
		t.Fatalf("%d answers for %d entries", len(out), len(logs))
	}
	for i := range n {
		if r, ok := out[i].(Result); !ok || r.Err != nil {
			t.Errorf("entry %d: %+v", i+1, out[i])
		}
		if _, err := store.GetActivation(fmt.Sprintf("%04d", i)); err != nil {
			t.Errorf("entry %d not applied: %v", i+1, err)
		}
	}
	if out[n] != nil {
		t.Errorf("configuration entry answered %+v", out[n])
	}
	if len(heard) != n || heard[0] != "0000" || heard[n-1] != fmt.Sprintf("%04d", n-1) {
		t.Errorf("hooks heard %v", heard)
	}
	if f.Applied() != n {
		t.Errorf("applied index %d, want %d", f.Applied(), n)
	}
}
