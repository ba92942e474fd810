package replication

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// BenchmarkEnqueueActivation compares an asynchronous call's enqueue (1
// KiB of args) on a single core's store with the same write proposed on
// the leader and on a follower of a three-member group over loopback
// mutual TLS: what a group adds before a 202. Run them in one run.
func BenchmarkEnqueueActivation(b *testing.B) {
	call := storage.QueuedCall{Module: "m", Function: "f", Subject: "alice", Args: json.RawMessage(`"` + strings.Repeat("x", 1<<10) + `"`)}
	rec := func(i int) storage.Activation {
		return storage.Activation{ID: fmt.Sprintf("%08d", i), Module: "m", Function: "f", Subject: "alice", Async: true, Status: storage.StatusQueued, QueuedAt: time.Now()}
	}
	b.Run("single", func(b *testing.B) {
		s, err := storage.Open(filepath.Join(b.TempDir(), "db"), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		for i := 0; b.Loop(); i++ {
			if err := s.EnqueueActivation(rec(i), call); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, on := range []string{"leader", "follower"} {
		b.Run("group-"+on, func(b *testing.B) {
			w := memberAs(b, startTLSGroup(b, 3), on).m.Writes()
			for i := 0; b.Loop(); i++ {
				// An election on a loaded machine: the write again, as a
				// client would (an id applied twice is the same record).
				err := w.EnqueueActivation(rec(i), call)
				for tries := 0; err != nil && tries < 50 && errors.As(err, new(*Unavailable)); tries++ {
					time.Sleep(100 * time.Millisecond)
					err = w.EnqueueActivation(rec(i), call)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
