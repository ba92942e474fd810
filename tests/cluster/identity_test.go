package cluster_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestNodeIdentityRefusals: on a core that admits token-joined workers
// only, a join token buys a new name only: enrolling as the core
// (core@…) or as a live worker's name is refused and the worker keeps
// working; a revoked worker that comes back under another name with the
// cookie it holds is refused at the link, and its revoked name cannot be
// enrolled again, also after the core restarts.
func TestNodeIdentityRefusals(t *testing.T) { identityRefusals(t, "--node-join", "token") }

// TestNodeIdentityRefusalsByDefault: the same on a core started with no
// --node-join: the default admits token-joined workers only, so a revoked
// worker holding the cookie cannot come back under a new name.
func TestNodeIdentityRefusalsByDefault(t *testing.T) { identityRefusals(t) }

func identityRefusals(t *testing.T, coreFlags ...string) {
	core := testcluster.StartCore(t, coreFlags...)
	adm := core.Client(core.Admin)
	token := func(node string) string {
		t.Helper()
		jt, err := adm.CreateJoinToken(ctx(t), 10*time.Minute, node)
		if err != nil {
			t.Fatal(err)
		}
		return jt.Token
	}
	// enroll runs a worker that joins with a token under name and expects
	// its refusal (the worker exits) naming why; a worker the core let in
	// runs on, and is killed when the test's context ends.
	enroll := func(name, host, why string) {
		t.Helper()
		dir := t.TempDir()
		out, err := exec.CommandContext(ctx(t), testcluster.Binary(t), "worker", "--data-dir", dir, "--node-name", name,
			"--node-addr", host+":"+testcluster.Port(t, host), "--join", core.NodeAddr,
			"--join-token", token(""), "--join-api", core.URL).CombinedOutput()
		if err == nil || !bytes.Contains(out, []byte(why)) {
			t.Fatalf("enroll as %s: err %v, want a refusal saying %q; output:\n%s", name, err, why, out)
		}
		t.Logf("enroll as %s: refused: %s", name, why)
	}

	dir := t.TempDir()
	w := testcluster.Start(t, dir, "worker", "--data-dir", filepath.Join(dir, "worker"),
		"--node-addr", "127.0.0.2:"+testcluster.Port(t, "127.0.0.2"), "--join", core.NodeAddr,
		"--join-token", token(""), "--join-api", core.URL, "--cookie-file", filepath.Join(dir, "absent"))
	core.WaitWorkers(t, func(ns []client.Node) bool { return testcluster.Has(ns, "worker@127.0.0.2") })
	serial := func(name string) (string, bool) {
		certs, err := adm.ListNodeCerts(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range certs {
			if c.Node == name {
				return c.Serial, c.Revoked
			}
		}
		return "", false
	}
	before, _ := serial("worker@127.0.0.2")

	enroll("core@127.0.0.1", "127.0.0.3", "carries the core role")
	enroll("core@127.0.0.4", "127.0.0.4", "carries the core role")
	enroll("worker@127.0.0.2", "127.0.0.5", "has already joined")
	if after, revoked := serial("worker@127.0.0.2"); after != before || revoked {
		t.Fatalf("the live worker's record changed: serial %s → %s, revoked %v", before, after, revoked)
	}
	if ns, _ := adm.ListNodes(ctx(t)); !testcluster.Has(ns, "worker@127.0.0.2") {
		t.Fatalf("the live worker left the table: %v", ns)
	}

	// Revoked, then back under another name with the cookie it holds.
	if err := adm.RevokeNode(ctx(t), "worker@127.0.0.2"); err != nil {
		t.Fatal(err)
	}
	w.Kill()
	core.WaitWorkers(t, func(ns []client.Node) bool { return !testcluster.Has(ns, "worker@127.0.0.2") })
	refused := regexp.MustCompile(`node link refused`)
	count := func() int { return len(refused.FindAllString(core.Log(), -1)) }
	n := count()
	testcluster.Start(t, dir, "worker", "--data-dir", filepath.Join(dir, "again"), "--node-name", "worker@127.0.0.9",
		"--node-addr", "127.0.0.9:"+testcluster.Port(t, "127.0.0.9"), "--join", core.NodeAddr,
		"--cookie-file", filepath.Join(dir, "worker", "node-tls", "cookie"))
	if err := wait.Until(context.Background(), time.Minute, "the returning box refused twice", func() bool {
		if ns, _ := adm.ListNodes(ctx(t)); testcluster.Has(ns, "worker@127.0.0.9") {
			t.Fatal("the revoked box is listed under a new name")
		}
		return count() >= n+2
	}); err != nil {
		t.Fatalf("%v; core log:\n%s", err, core.Log())
	}
	enroll("worker@127.0.0.2", "127.0.0.6", "revocation is final")
	core.Stop()
	core.Restart()
	enroll("worker@127.0.0.2", "127.0.0.6", "revocation is final")
	if _, revoked := serial("worker@127.0.0.2"); !revoked {
		t.Fatal("the revocation did not survive the restart")
	}
}
