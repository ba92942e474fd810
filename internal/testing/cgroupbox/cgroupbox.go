// Package cgroupbox starts the real single box (`edgefaas core
// --with-worker`) inside a memory cgroup the test makes, at the size of a
// small edge machine's share. Suites that ask "does the node live within
// this much memory, whatever is done to it" start one: the budget suite
// with well-behaved load, the adversarial suite with hostile load. The
// box's cleanup fails the test when the kernel OOM-killed anything in the
// cgroup, read from the cgroup's own counter.
package cgroupbox

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/memcgroup"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// Box is a single box running in a memory cgroup.
type Box struct {
	Group *memcgroup.Group
	Proc  *testcluster.Proc
	// URL is the core's HTTP address; Admin and User are clients with the
	// admin token and the guest user's token, Guest and AdminToken those
	// tokens themselves.
	URL               string
	Admin, User       *client.Client
	Guest, AdminToken string
	// Limit is the cgroup's limit as the kernel keeps it.
	Limit int64
	// DataDir is the box's --data-dir.
	DataDir string
}

// Start makes a cgroup of limit bytes and starts the real binary in it
// (its PID is written to cgroup.procs before it execs), with extra flags.
// Where no memory cgroup can be made the test is skipped with the reason.
func Start(t *testing.T, limit int64, extra ...string) *Box {
	t.Helper()
	return StartOn(t, limit, "", extra...)
}

// StartOn is Start with the core's data directory at dataDir (a file
// system the test made, such as a small tmpfs); "" is a fresh temporary
// directory.
func StartOn(t *testing.T, limit int64, dataDir string, extra ...string) *Box {
	t.Helper()
	testcluster.Binary(t) // built outside the cgroup
	g, err := memcgroup.New(fmt.Sprintf("edgefaas-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-")), limit, memcgroup.BelowOwnOrRoot)
	if err != nil {
		t.Skipf("cannot make a memory cgroup here: %v", err)
	}
	t.Cleanup(func() {
		if err := g.Remove(); err != nil {
			t.Error(err)
		}
	})
	b := &Box{Group: g}
	if b.Limit, err = g.Limit(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if dataDir == "" {
		dataDir = filepath.Join(dir, "core")
	}
	b.DataDir = dataDir
	httpAddr, nodeAddr := "127.0.0.1:"+testcluster.Port(t, "127.0.0.1"), "127.0.0.1:"+testcluster.Port(t, "127.0.0.1")
	args := append([]string{"core", "--with-worker", "--data-dir", dataDir,
		"--http-addr", httpAddr, "--node-addr", nodeAddr, "--allow-net", "127.0.0.0/8", "--egress-allow", "*"}, extra...)
	b.Proc = testcluster.StartWith(t, g.Wrap(), dir, args...)
	t.Cleanup(func() {
		b.Proc.Kill()
		if n, err := g.OOMKills(); err == nil && n > 0 {
			t.Errorf("the kernel OOM-killed %d process(es) in the %d MiB cgroup", n, limit>>20)
		}
	})
	b.URL = "http://" + b.Proc.WaitLog(testcluster.ListeningRE, 60*time.Second)[1]
	admin, guest, err := testcluster.ReadTokens(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	b.Guest, b.AdminToken = guest, admin
	if b.Admin, err = client.New(b.URL, admin); err != nil {
		t.Fatal(err)
	}
	if b.User, err = client.New(b.URL, guest); err != nil {
		t.Fatal(err)
	}
	return b
}

// OOMKills is the cgroup's OOM-kill counter, or the reason it cannot be
// read, for messages.
func (b *Box) OOMKills() string {
	n, err := b.Group.OOMKills()
	if err != nil {
		return err.Error()
	}
	return fmt.Sprint(n)
}

// WaitNode waits for the single box's worker to report, and returns it.
func (b *Box) WaitNode(t *testing.T) client.Node {
	t.Helper()
	var node client.Node
	wait.ForState(t, 30*time.Second, "the single box's worker reports", func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ns, err := b.Admin.ListNodes(ctx)
		if err == nil && len(ns) == 1 {
			node = ns[0]
			return true, ""
		}
		return false, fmt.Sprintf("%d nodes, %v", len(ns), err)
	})
	return node
}
