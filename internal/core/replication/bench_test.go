package replication

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// BenchmarkCreateFunction compares a small function's creation on a
// single core's store with the same write proposed on a follower of a
// three-member group over loopback mutual TLS (forwarded to the leader,
// committed by a majority, applied): run both in one run and compare.
func BenchmarkCreateFunction(b *testing.B) {
	code := make([]byte, 4<<10)
	in := storage.Module{Name: storage.DefaultModule}
	b.Run("single", func(b *testing.B) {
		s, err := storage.Open(filepath.Join(b.TempDir(), "db"), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		for i := 0; b.Loop(); i++ {
			nf := storage.NewFunction{Name: fmt.Sprintf("f%d", i), Owner: "alice", Code: code, ABI: "funless"}
			if _, err := s.CreateFunction(in, nf); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, on := range []string{"leader", "follower"} {
		b.Run("group-"+on, func(b *testing.B) {
			groupCreates(b, memberAs(b, startTLSGroup(b, 3), on), in, code)
		})
	}
}

// memberAs is the group's leader if on is "leader", else a follower.
func memberAs(b *testing.B, members []*tlsMember, on string) *tlsMember {
	if on == "leader" {
		for _, tm := range members {
			if addr, _ := tm.m.Leader(); addr == tm.tr.LocalAddr() {
				return tm
			}
		}
	}
	return follower(b, members)
}

// groupCreates creates functions through the member tm.
func groupCreates(b *testing.B, tm *tlsMember, in storage.Module, code []byte) {
	for i := 0; b.Loop(); i++ {
		st, err := tm.store.NewStamp()
		if err != nil {
			b.Fatal(err)
		}
		nf := storage.NewFunction{Name: fmt.Sprintf("f%d", i), Owner: "alice", Code: code, ABI: "funless"}
		if _, err := tm.m.Propose(CreateFunction{In: in, New: nf, Stamp: st}); err != nil {
			b.Fatal(err)
		}
	}
}
