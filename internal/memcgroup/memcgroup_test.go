package memcgroup_test

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/edgefaas/edgefaas/internal/memcgroup"
)

// TestGroupHasItsLimit: a group made below the caller's own cgroup has
// the limit asked for, no OOM kill yet, and is removed.
func TestGroupHasItsLimit(t *testing.T) {
	g, err := memcgroup.New(fmt.Sprintf("edgefaas-test-%d", os.Getpid()), 64<<20, memcgroup.BelowOwn)
	if errors.Is(err, memcgroup.ErrUnavailable) {
		t.Skipf("no memory cgroup can be made here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if lim, err := g.Limit(); err != nil || lim != 64<<20 {
		t.Errorf("limit %d, %v; want %d", lim, err, 64<<20)
	}
	if n, err := g.OOMKills(); err != nil || n != 0 {
		t.Errorf("OOM kills %d, %v; want 0", n, err)
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(g.Dir); !os.IsNotExist(err) {
		t.Errorf("%s is still there: %v", g.Dir, err)
	}
}

// TestStaleGroupsRemoved: a group left by a process that was killed (its
// PID gone) is removed; a live process's group is kept.
func TestStaleGroupsRemoved(t *testing.T) {
	const prefix = "edgefaas-staletest-"
	stale, err := memcgroup.New(prefix+"2147483646-1", 64<<20, memcgroup.BelowOwn) // no such process
	if errors.Is(err, memcgroup.ErrUnavailable) {
		t.Skipf("no memory cgroup can be made here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer stale.Remove()
	live, err := memcgroup.New(fmt.Sprintf("%s%d-1", prefix, os.Getpid()), 64<<20, memcgroup.BelowOwn)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Remove()
	memcgroup.RemoveStale(prefix)
	if _, err := os.Stat(stale.Dir); !os.IsNotExist(err) {
		t.Errorf("%s is still there: %v", stale.Dir, err)
	}
	if _, err := os.Stat(live.Dir); err != nil {
		t.Errorf("the live process's %s was removed: %v", live.Dir, err)
	}
}
