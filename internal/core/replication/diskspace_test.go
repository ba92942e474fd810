package replication

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	"golang.org/x/sys/unix"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// TestLeaderWithAShortDiskRefusesGrowingWrites: the leader keeps its data
// on a small tmpfs of the test's own, which a file then fills below the
// store's free-space floor. A write that would grow the state is refused
// with storage.ErrDiskFull before it enters the log (proposed, the leader
// itself could not apply it); a delete, which frees space, still goes
// through.
func TestLeaderWithAShortDiskRefusesGrowingWrites(t *testing.T) {
	small := t.TempDir()
	if err := unix.Mount("tmpfs", small, "tmpfs", 0, "size=64m,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(small, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", small, err)
		}
	})
	// Raft's LAN timeouts (raftTimings): an election under the machine's
	// load would move the lead off the small disk.
	g := &testGroup{t: t, tune: raftTimings}
	// The member that bootstraps is the only one that knows the group at
	// first: it leads.
	lead := g.start("core-0", filepath.Join(small, "core-0"))
	servers := []raft.Server{{ID: lead.id, Address: lead.trans.LocalAddr()}}
	for _, id := range []raft.ServerID{"core-1", "core-2"} {
		tm := g.start(id, t.TempDir())
		servers = append(servers, raft.Server{ID: tm.id, Address: tm.trans.LocalAddr()})
	}
	t.Cleanup(func() {
		for _, tm := range g.live() {
			g.stop(tm)
		}
	})
	if err := lead.m.Bootstrap(servers...); err != nil {
		t.Fatal(err)
	}
	if l := g.leader(); l != lead {
		t.Fatalf("%s leads, not the member that bootstrapped", l.id)
	}
	v, err := lead.m.Apply(CreateModule{Name: "m", Owner: "alice", Stamp: stamp(t, lead.store)}, limit)
	if err != nil {
		t.Fatal(err)
	}
	mod := v.(storage.Module)
	v, err = lead.m.Apply(CreateFunction{In: mod, New: newFunction("f", "code1"), Stamp: stamp(t, lead.store)}, limit)
	if err != nil {
		t.Fatal(err)
	}
	f := v.(storage.Function)

	var st unix.Statfs_t
	if err := unix.Statfs(small, &st); err != nil {
		t.Fatal(err)
	}
	// 3 MiB are left: below the store's floor (4 MiB), room for the
	// log's own small writes.
	filler, err := os.Create(filepath.Join(small, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer filler.Close()
	if err := unix.Fallocate(int(filler.Fd()), 0, 0, int64(st.Bavail*uint64(st.Bsize))-3<<20); err != nil {
		t.Fatalf("fill the disk: %v", err)
	}

	last := lead.m.Raft().LastIndex()
	_, err = lead.m.Apply(CreateFunction{In: mod, New: newFunction("g", "code2"), Stamp: stamp(t, lead.store)}, limit)
	if !errors.Is(err, storage.ErrDiskFull) {
		t.Fatalf("a create on the leader with a full disk: %v, want ErrDiskFull", err)
	}
	if now := lead.m.Raft().LastIndex(); now != last {
		t.Fatalf("the refused create entered the log: last index %d, %d before", now, last)
	}
	if _, err := lead.m.Apply(DeleteFunction{Seen: f}, limit); err != nil {
		t.Fatalf("a delete on the leader with a full disk: %v", err)
	}
}
