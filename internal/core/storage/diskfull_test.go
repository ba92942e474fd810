package storage

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// fakeDisk replaces statfs with figures the test sets: total bytes, and
// free bytes as the test says (the database's own writes are not counted).
type fakeDisk struct{ total, free atomic.Uint64 }

func useFakeDisk(t *testing.T, total, free uint64) *fakeDisk {
	t.Helper()
	d := &fakeDisk{}
	d.total.Store(total)
	d.free.Store(free)
	old := diskUsage
	diskUsage = func(vfs.FS, string) (vfs.DiskUsage, error) {
		return vfs.DiskUsage{AvailBytes: d.free.Load(), TotalBytes: d.total.Load()}, nil
	}
	t.Cleanup(func() { diskUsage = old })
	return d
}

func openLogged(t *testing.T, dir string) (*Store, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	s, err := Open(dir, slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, &buf
}

func TestFloorFor(t *testing.T) {
	for _, c := range []struct{ total, want uint64 }{
		{32 << 20, 4 << 20},  // small: at least 4 MiB
		{256 << 20, 8 << 20}, // a 32nd
		{64 << 30, 1 << 30},  // large: at most 1 GiB
	} {
		if got := FloorFor(c.total); got != c.want {
			t.Errorf("FloorFor(%d) = %d, want %d", c.total, got, c.want)
		}
	}
}

// A full disk refuses growing writes with ErrDiskFull, lets deletes and
// revocations through, logs each change once, and accepts writes again
// when space returns, with no reopen.
func TestDiskFullRefusesGrowingWrites(t *testing.T) {
	const total = 256 << 20 // floor 8 MiB
	d := useFakeDisk(t, total, 100<<20)
	s, logs := openLogged(t, t.TempDir())
	fn := func(name string) (Function, error) {
		return s.CreateFunction(s.seenModule(DefaultModule), NewFunction{Name: name, Owner: "alice", Code: []byte("code of " + name), ABI: "funless"})
	}
	keep, err := fn("keep")
	if err != nil {
		t.Fatal(err)
	}
	gone, err := fn("gone")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateSubject("bob", false); err != nil {
		t.Fatal(err)
	}

	d.free.Store(8<<20 + 100) // just above the floor: a small write fits, a larger one not
	big := bytes.Repeat([]byte{1}, 1<<10)
	if _, err := s.CreateFunction(s.seenModule(DefaultModule), NewFunction{Name: "big", Owner: "alice", Code: big, ABI: "funless"}); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("an upload below the floor: %v, want ErrDiskFull", err)
	}
	// Full now: every growing write is refused, however small, until
	// there is room for the reserve too.
	for i, w := range []func() error{
		func() error { _, err := fn("small"); return err },
		func() error {
			return s.EnqueueActivation(Activation{ID: "0000000000000001", Status: StatusQueued}, QueuedCall{Module: "_", Function: "keep"})
		},
		func() error {
			return s.WriteActivations([]Activation{{ID: "0000000000000002", Status: StatusSuccess}}, false)
		},
	} {
		if err := w(); !errors.Is(err, ErrDiskFull) {
			t.Errorf("write %d on a full disk: %v, want ErrDiskFull", i, err)
		}
	}
	if full, refused := s.DiskFull(); !full || refused != 4 {
		t.Errorf("DiskFull() = %v, %d; want true, 4", full, refused)
	}
	// Reads, deletes and revocations run.
	if _, err := s.GetFunction(DefaultModule, "keep"); err != nil {
		t.Errorf("read on a full disk: %v", err)
	}
	if _, err := s.DeleteFunction(gone); err != nil {
		t.Errorf("delete on a full disk: %v", err)
	}
	if err := s.RevokeToken("bob"); err != nil {
		t.Errorf("revoke on a full disk: %v", err)
	}

	d.free.Store(50 << 20) // space freed
	if _, err := s.UpdateFunction(keep, FunctionUpdate{Code: big, ABI: "funless"}); err != nil {
		t.Fatalf("a write after space returned: %v", err)
	}
	if full, _ := s.DiskFull(); full {
		t.Error("DiskFull() still true after a write was accepted")
	}
	out := logs.String()
	if n, m := strings.Count(out, "disk full: refusing writes"), strings.Count(out, "writes accepted again"); n != 1 || m != 1 {
		t.Errorf("log: %d lines saying full, %d saying accepted again; want 1 each:\n%s", n, m, out)
	}
}

// The reserve file is made once there is room for it; pebble's disk-full
// hook removes it; Open removes it on a disk already below the floor.
func TestDiskReserve(t *testing.T) {
	const total = 64 << 20 // floor 4 MiB, reserve 2 MiB
	d := useFakeDisk(t, total, 50<<20)
	dir := filepath.Join(t.TempDir(), "db")
	reserve := filepath.Join(filepath.Dir(dir), reserveName)
	s, err := Open(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateModule("m", "alice"); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(reserve); err != nil || fi.Size() != 2<<20 {
		t.Fatalf("reserve after the first write: %v, %v; want 2 MiB", fi, err)
	}
	s.guard.onDiskFull()
	if _, err := os.Stat(reserve); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reserve after ENOSPC: %v; want it removed", err)
	}
	if full, _ := s.DiskFull(); !full {
		t.Error("DiskFull() false after ENOSPC")
	}
	if _, err := s.CreateModule("n", "alice"); err != nil {
		t.Fatalf("a write once there is room again: %v", err)
	}
	if _, err := os.Stat(reserve); err != nil {
		t.Errorf("reserve not made again: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	d.free.Store(3 << 20) // below the floor at start
	s2, _ := openLogged(t, dir)
	if _, err := os.Stat(reserve); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("reserve after opening below the floor: %v; want it removed", err)
	}
	if _, err := s2.GetModule("n"); err != nil {
		t.Errorf("read after opening on a full disk: %v", err)
	}
	if _, err := s2.CreateModule("o", "alice"); !errors.Is(err, ErrDiskFull) {
		t.Errorf("write after opening on a full disk: %v; want ErrDiskFull", err)
	}
}
