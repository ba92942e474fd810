package group_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// snapshotEntries is the cores' --group-snapshot-entries here: far fewer
// entries than the functions the test creates, so the leader has
// snapshotted and dropped the start of its log before the new core joins.
const snapshotEntries = 64

// TestJoinCatchesUpFromSnapshot: a core joining a group that holds many
// functions (1,000 with -group.long, 200 in make test) takes the
// leader's snapshot, since the leader keeps only the entries after its
// newest snapshot and a few before: the new core reports a snapshot
// restored, it holds every function with the leader's code hash and
// version, and it serves as a member (a create through it reaches the
// others).
func TestJoinCatchesUpFromSnapshot(t *testing.T) {
	functions := 200
	if *long {
		functions = 1000
	}
	disk := dataDisk(t)
	snap := []string{"--group-snapshot-entries", strconv.Itoa(snapshotEntries)}
	g := startGroupOn(t, func(host string) string { return filepath.Join(disk, host) }, snap...)
	lead := g.leader(t, nil)
	cl := g.client(t, lead)
	if _, err := settled(t, func(ctx context.Context) error { return cl.CreateModule(ctx, "demo") }); err != nil {
		t.Fatal(err)
	}
	code := testmodules.Read(t, "hello")
	created := make([]client.Function, functions)
	var wg sync.WaitGroup
	errs := make(chan error, functions)
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				name := fmt.Sprintf("f%04d", i)
				var f client.Function
				retried, err := settled(t, func(ctx context.Context) error {
					var err error
					no := false
					f, err = cl.CreateFunction(ctx, "demo", client.Upload{Name: name, Code: code, WaitForWorkers: &no})
					return err
				})
				if err != nil && !(retried && client.IsStatus(err, 409)) {
					errs <- fmt.Errorf("create %s: %w", name, err)
					continue
				}
				created[i] = f
			}
		})
	}
	for i := range functions {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// The leader snapshots within its check period once the entries pass
	// the threshold; the new core must find the start of the log gone.
	var atJoin client.GroupMember
	wait.For(t, 2*time.Minute, "the leader has a snapshot past the first functions", func() bool {
		atJoin = self(t, g, lead)
		return atJoin.SnapshotIndex > 2*snapshotEntries
	})
	joiner := g.addCore(t, "127.0.0.4", filepath.Join(disk, "127.0.0.4"), snap...)
	g.waitSubjects(t, joiner)
	jc := g.client(t, joiner)
	commit := self(t, g, lead).CommitIndex
	var st client.GroupMember
	wait.For(t, 2*time.Minute, "the new core applies what the leader committed", func() bool {
		st = self(t, g, joiner)
		return st.AppliedIndex >= commit
	})
	if st.Restores < 1 {
		t.Fatalf("the new core caught up to index %d (the leader's snapshot %d) without restoring a snapshot: %+v", st.AppliedIndex, atJoin.SnapshotIndex, st)
	}
	mod, err := jc.GetModule(ctxT(t, 30*time.Second), "demo")
	if err != nil {
		t.Fatal(err)
	}
	if len(mod.Functions) != functions {
		t.Fatalf("the new core reports applied index %d, the leader's commit %d, yet lists %d of the %d functions in demo", st.AppliedIndex, commit, len(mod.Functions), functions)
	}
	for i, want := range created {
		name := fmt.Sprintf("f%04d", i)
		f, err := jc.GetFunction(ctxT(t, 10*time.Second), "demo", name)
		if err != nil {
			t.Fatalf("function %s on the new core: %v", name, err)
		}
		if want.Hash != "" && (f.Hash != want.Hash || f.Version != want.Version) {
			t.Fatalf("function %s on the new core: hash %s version %d, created as hash %s version %d", name, f.Hash, f.Version, want.Hash, want.Version)
		}
	}

	// A member, not a copy: a write through the new core reaches the leader.
	if _, err := settled(t, func(ctx context.Context) error { return create(ctx, jc, "after_join", code) }); err != nil {
		t.Fatalf("create through the new core: %v", err)
	}
	if _, err := cl.GetFunction(ctxT(t, 10*time.Second), "demo", "after_join"); err != nil {
		t.Fatalf("a create through the new core, read on the leader: %v", err)
	}
	t.Logf("%d functions; the leader's snapshot at index %d, its commit %d when the new core had joined; the new core restored %d snapshot(s), applied %d", functions, atJoin.SnapshotIndex, commit, st.Restores, st.AppliedIndex)
}

// self is m's own row of the group's members, as m reports it: asked
// until m answers (it asks the other members too, each within a bound).
func self(t *testing.T, g *group, m *member) client.GroupMember {
	t.Helper()
	var st client.GroupMember
	wait.For(t, time.Minute, m.host+" reports its status", func() bool {
		ms, err := g.client(t, m).GroupMembers(ctxT(t, 30*time.Second))
		for _, s := range ms {
			if err == nil && s.Self {
				st = s
				return true
			}
		}
		return false
	})
	return st
}
