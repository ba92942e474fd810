package replication

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// logAndStable is what Raft asks of a store for its log and values.
type logAndStable interface {
	raft.LogStore
	raft.StableStore
}

// TestLogStoreMatchesInmem runs one sequence of log and stable operations
// on the pebble LogStore and on hashicorp/raft's own InmemStore (the
// reference its tests use) and wants the same answers at every step, then
// the same answers again from the pebble store reopened.
func TestLogStoreMatchesInmem(t *testing.T) {
	dir := t.TempDir()
	p, err := OpenLogStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	ref := raft.NewInmemStore()
	entry := func(i uint64) *raft.Log {
		l := &raft.Log{Index: i, Term: i/4 + 1, Type: raft.LogCommand, Data: []byte(fmt.Sprintf("data %d", i))}
		if i%3 == 0 {
			l.Extensions = []byte{byte(i)}
			l.AppendedAt = time.Unix(1700000000, int64(i)).UTC()
		}
		if i%5 == 0 {
			l.Type = raft.LogConfiguration
			l.Data = nil
		}
		return l
	}
	batch := func(from, to uint64) []*raft.Log {
		var ls []*raft.Log
		for i := from; i <= to; i++ {
			ls = append(ls, entry(i))
		}
		return ls
	}
	steps := []struct {
		name string
		do   func(s logAndStable) error
	}{
		{"store one", func(s logAndStable) error {
			return s.StoreLog(entry(1))
		}},
		{"store a batch", func(s logAndStable) error {
			return s.StoreLogs(batch(2, 40))
		}},
		{"compact the front", func(s logAndStable) error {
			return s.DeleteRange(1, 10)
		}},
		{"truncate the tail", func(s logAndStable) error {
			return s.DeleteRange(35, 40)
		}},
		{"overwrite a conflicting suffix", func(s logAndStable) error {
			return s.StoreLogs(batch(30, 45))
		}},
		{"stable values", func(s logAndStable) error {
			if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
				return err
			}
			return s.Set([]byte("LastVoteCand"), []byte("core-b"))
		}},
	}
	type view struct {
		First, Last uint64
		Logs        map[uint64]raft.Log
		Missing     []uint64
		Term        uint64
		TermErr     string
		Vote        string
		VoteErr     string
		Unknown     string
	}
	look := func(s logAndStable) view {
		var v view
		v.First, _ = s.FirstIndex()
		v.Last, _ = s.LastIndex()
		v.Logs = map[uint64]raft.Log{}
		for i := uint64(0); i <= 50; i++ {
			var l raft.Log
			err := s.GetLog(i, &l)
			switch {
			case errors.Is(err, raft.ErrLogNotFound):
				v.Missing = append(v.Missing, i)
			case err != nil:
				t.Fatalf("GetLog(%d): %v", i, err)
			default:
				if l.Data == nil {
					l.Data = []byte{}
				}
				if l.Extensions == nil {
					l.Extensions = []byte{}
				}
				v.Logs[i] = l
			}
		}
		var err error
		// A missing number is 0 with no error in InmemStore, the error
		// "not found" in raft-boltdb and here: Raft takes both as 0.
		v.Term, err = s.GetUint64([]byte("CurrentTerm"))
		if err != nil && err.Error() != "not found" {
			v.TermErr = err.Error()
		}
		vote, err := s.Get([]byte("LastVoteCand"))
		v.Vote = string(vote)
		if err != nil {
			v.VoteErr = err.Error()
		}
		if _, err := s.Get([]byte("nothing")); err != nil {
			v.Unknown = err.Error()
		}
		return v
	}
	for _, st := range steps {
		if err := st.do(p); err != nil {
			t.Fatalf("%s: pebble: %v", st.name, err)
		}
		if err := st.do(ref); err != nil {
			t.Fatalf("%s: inmem: %v", st.name, err)
		}
		if got, want := look(p), look(ref); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: pebble store\n%+v\nreference\n%+v", st.name, got, want)
		}
	}
	want := look(ref)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p, err = OpenLogStore(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if got := look(p); !reflect.DeepEqual(got, want) {
		t.Fatalf("reopened: pebble store\n%+v\nreference\n%+v", got, want)
	}
}

// TestLogStoreEmpty: an empty log has first and last index 0, and missing
// stable keys give the "not found" Raft tests for.
func TestLogStoreEmpty(t *testing.T) {
	p, err := OpenLogStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	f, _ := p.FirstIndex()
	l, _ := p.LastIndex()
	if f != 0 || l != 0 {
		t.Errorf("first, last = %d, %d; want 0, 0", f, l)
	}
	if _, err := p.GetUint64([]byte("CurrentTerm")); err == nil || err.Error() != "not found" {
		t.Errorf("GetUint64 of a missing key: %v, want \"not found\"", err)
	}
	var e raft.Log
	if err := p.GetLog(1, &e); !errors.Is(err, raft.ErrLogNotFound) {
		t.Errorf("GetLog(1) = %v, want ErrLogNotFound", err)
	}
}
