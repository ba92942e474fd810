package storage

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestQueuedArgsNotRewrittenByCompactions: queued calls with large args,
// each beside a small record as a neighbour's calls write, are flushed and
// compacted as a core's store does. Compactions write each arg at most
// once, moving it into a blob file (value separation), and from then on
// rewrite only the keys around it and a reference: they write less than
// 1.5 times the args' bytes. Without, every compaction rewrote the queue
// so far: 2.96 times the args for 48 calls of 1 MiB, growing with the
// queue, and a tenant queuing 4 MiB calls slowed a neighbour tenant's
// calls 17- to 54-fold (docs/performance.md).
func TestQueuedArgsNotRewrittenByCompactions(t *testing.T) {
	s, err := OpenWith(t.TempDir(), nil, Options{MemTableBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const calls, argBytes = 48, 1 << 20
	rng := rand.New(rand.NewPCG(1, 2))
	pad := make([]byte, argBytes)
	for i := 0; i < calls; i++ {
		for j := range pad {
			pad[j] = 'a' + byte(rng.IntN(26)) // compressible no more than text is
		}
		args, _ := json.Marshal(map[string]string{"pad": string(pad)})
		id := fmt.Sprintf("%016d", 2*i+1)
		if err := s.EnqueueActivation(Activation{ID: id, Status: StatusQueued}, QueuedCall{Module: "_", Function: "nowhere", Args: args}); err != nil {
			t.Fatal(err)
		}
		if err := s.WriteActivations([]Activation{{ID: fmt.Sprintf("%016d", 2*i+2), Status: StatusSuccess}}, true); err != nil {
			t.Fatal(err)
		}
		if err := s.db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	// Let the compactions the flushes started finish.
	for deadline := time.Now().Add(time.Minute); s.db.Metrics().Compact.NumInProgress > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	m := s.db.Metrics()
	total := m.Total()
	compacted := total.TableBytesCompacted + total.BlobBytesCompacted
	t.Logf("%d compactions wrote %d MiB (tables %d, blobs %d) for %d MiB of queued args; flushes wrote %d MiB",
		m.Compact.Count, compacted>>20, total.TableBytesCompacted>>20, total.BlobBytesCompacted>>20, calls*argBytes>>20, (total.TableBytesFlushed+total.BlobBytesFlushed)>>20)
	if m.Compact.Count == 0 {
		t.Fatal("no compaction ran: the test proves nothing")
	}
	if compacted >= calls*argBytes*3/2 {
		t.Errorf("compactions wrote %d MiB for %d MiB of queued args: they rewrite the args", compacted>>20, calls*argBytes>>20)
	}
}
