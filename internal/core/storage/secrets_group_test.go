package storage

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/edgefaas/edgefaas/internal/core/secrets"
	"github.com/edgefaas/edgefaas/internal/testing/diskfill"
)

// groupStore opens a store whose key ring keeps its old keys, as a core
// group member's does, having adopted ring (a key file's contents) if not
// nil.
func groupStore(t *testing.T, ring []byte) (*Store, *secrets.Keyring) {
	t.Helper()
	dir := t.TempDir()
	kr, _, err := secrets.LoadOrCreate(filepath.Join(dir, secrets.FileName))
	if err != nil {
		t.Fatal(err)
	}
	kr.KeepOldKeys()
	if ring != nil {
		if err := kr.Adopt(ring); err != nil {
			t.Fatal(err)
		}
	}
	s, err := OpenWith(filepath.Join(dir, "db"), nil, Options{Secrets: kr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, kr
}

// TestRotatedKeysTaken: a store that replaced its contents with those of
// a store past two rotations, holding only the keys from before them,
// takes both rotated keys from the contents, in their order (the newest
// current), and opens the records; again, it takes none; a store that
// never held the group's keys takes none and names them.
func TestRotatedKeysTaken(t *testing.T) {
	src, srcKeys := groupStore(t, nil)
	before := srcKeys.Export()
	var ids []string
	for range 2 {
		id, sealed, err := src.NewSealedSecretsKey()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := src.RotateSecretsKeyTo(id, sealed); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	sinks := []Sink{{Type: SinkWebhook, Params: SinkParams{URL: "http://h/in", Secret: "s-plain"}}}
	if _, err := src.CreateFunction(src.seenModule(DefaultModule), NewFunction{Name: "f", Owner: "o", Code: []byte("c"), Sinks: sinks}); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(t.TempDir(), "snap")
	if err := src.Checkpoint(snap); err != nil {
		t.Fatal(err)
	}

	dst, dstKeys := groupStore(t, before)
	if err := dst.Replace(snap); err != nil {
		t.Fatal(err)
	}
	if added, unopened, err := dst.TakeRotatedKeys(); err != nil || added != 2 || len(unopened) != 0 {
		t.Fatalf("took %d keys, %v unopened (%v); want 2, none", added, unopened, err)
	}
	if cur := dstKeys.Current(); cur != ids[1] {
		t.Errorf("current key %s, want the last rotation's %s", cur, ids[1])
	}
	if f, err := dst.GetFunction(DefaultModule, "f"); err != nil || f.Sinks[0].Params.Secret != "s-plain" {
		t.Errorf("the record after taking the keys: %+v, %v", f, err)
	}
	if added, _, err := dst.TakeRotatedKeys(); err != nil || added != 0 {
		t.Errorf("taken again: %d keys (%v), want none", added, err)
	}

	lone, _ := groupStore(t, nil)
	if err := lone.Replace(snap); err != nil {
		t.Fatal(err)
	}
	if added, unopened, err := lone.TakeRotatedKeys(); err != nil || added != 0 || !slices.Equal(unopened, slices.Sorted(slices.Values(ids))) {
		t.Errorf("a store without the group's keys: took %d, unopened %v (%v); want 0, %v", added, unopened, err, ids)
	}
}

// TestRotationOnAFullKeyDisk: a group's rotation applied where the key
// file's disk is full is refused with ErrDiskFull, which a group member
// waits out and tries again (any other error stops it), and goes through
// once there is room.
func TestRotationOnAFullKeyDisk(t *testing.T) {
	small, err := diskfill.Tmpfs(t, 1<<20)
	if err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	path := filepath.Join(small, secrets.FileName)
	kr, _, err := secrets.LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	kr.KeepOldKeys()
	s, err := OpenWith(filepath.Join(t.TempDir(), "db"), nil, Options{Secrets: kr})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id, sealed, err := s.NewSealedSecretsKey()
	if err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(small, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Fallocate(int(f.Fd()), 0, 0, int64(diskfill.Free(t, small))); err != nil {
		t.Fatalf("fill the disk: %v", err)
	}
	f.Close()
	if _, err := s.RotateSecretsKeyTo(id, sealed); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("a rotation with the key file's disk full: %v, want ErrDiskFull", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RotateSecretsKeyTo(id, sealed); err != nil || kr.Current() != id {
		t.Fatalf("the rotation with room again: %v, current %s, want %s", err, kr.Current(), id)
	}
}
