package group_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/diskfill"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestFollowerWithAFullDisk: one follower keeps its data on a small tmpfs
// of the test's own, which another program (the test) then fills below
// the core's free-space floor. The group goes on taking creates through
// another core; the follower cannot apply them. It must not stop (nor stop
// and fail again at restart, replaying the same entry): it stays a member
// and answers reads of what it applied. Once the filler is removed it
// applies every acknowledged create, in order, without a restart.
func TestFollowerWithAFullDisk(t *testing.T) {
	const smallDisk = 64 << 20
	shared := dataDisk(t)
	small, err := diskfill.Tmpfs(t, smallDisk)
	if err != nil {
		t.Skipf("the follower's data: %v", err)
	}
	const shortHost = "127.0.0.3" // joins the group: a follower
	g := startGroupOn(t, func(host string) string {
		if host == shortHost {
			return filepath.Join(small, host)
		}
		return filepath.Join(shared, host)
	})
	var short, other *member
	for _, m := range g.cores {
		switch m.host {
		case shortHost:
			short = m
		case "127.0.0.1":
			other = m
		}
	}
	oc, sc := g.client(t, other), g.client(t, short)
	code := testmodules.Read(t, "hello")
	if _, err := settled(t, func(ctx context.Context) error { return oc.CreateModule(ctx, "demo") }); err != nil {
		t.Fatal(err)
	}
	if retried, err := settled(t, func(ctx context.Context) error { return create(ctx, oc, "before", code) }); err != nil && !(retried && client.IsStatus(err, 409)) {
		t.Fatal(err)
	}
	wait.ForState(t, 60*time.Second, "before on "+short.host, func() (bool, string) {
		_, err := sc.GetFunction(ctxT(t, 10*time.Second), "demo", "before")
		return err == nil, fmt.Sprint(err)
	})

	// Another program takes all but 1 MiB of the small disk: below the
	// core's floor (4 MiB), above what the group's log needs for a few
	// small entries.
	filler := filepath.Join(small, "filler")
	diskfill.FillTo(t, filler, small, 1<<20)
	const during = 5
	var acked []string
	for i := range during {
		name := fmt.Sprintf("during%d", i)
		retried, err := settled(t, func(ctx context.Context) error { return create(ctx, oc, name, code) })
		if client.IsStatus(err, 507) {
			// The core on the full disk leads now: it refuses to grow.
			t.Logf("create %s: %v", name, err)
			continue
		}
		if err != nil && !(retried && client.IsStatus(err, 409)) {
			t.Fatalf("create %s through %s while the disk of %s is full: %v", name, other.host, short.host, err)
		}
		acked = append(acked, name)
	}
	stopped := func() bool {
		select {
		case <-short.Process.Done():
			return true
		default:
			return false
		}
	}
	if len(acked) == 0 {
		t.Fatalf("no create acknowledged while the disk of %s was full", short.host)
	}
	wait.ForState(t, 60*time.Second, short.host+" waits for disk space, or stops", func() (bool, string) {
		return stopped() || strings.Contains(short.Log(), "waiting for space"), "neither yet"
	})
	if stopped() {
		t.Fatalf("the follower with a full disk stopped:\n%s", tail(short.Log()))
	}
	if _, err := sc.GetFunction(ctxT(t, 10*time.Second), "demo", "before"); err != nil {
		t.Fatalf("a read through the follower with a full disk: %v", err)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	wait.ForState(t, 60*time.Second, "every acknowledged create on "+short.host, func() (bool, string) {
		var missing []string
		for _, name := range acked {
			if _, err := sc.GetFunction(ctxT(t, 10*time.Second), "demo", name); err != nil {
				missing = append(missing, name)
			}
		}
		return len(missing) == 0, fmt.Sprintf("missing %v", missing)
	})
	if retried, err := settled(t, func(ctx context.Context) error { return create(ctx, sc, "after", code) }); err != nil && !(retried && client.IsStatus(err, 409)) {
		t.Fatalf("a create through %s once space is back: %v", short.host, err)
	}
}

// tail is the end of a log, for a failure message.
func tail(log string) string {
	if len(log) > 4000 {
		return log[len(log)-4000:]
	}
	return log
}
