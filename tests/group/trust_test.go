package group_test

import (
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestGroupSharesNodeTrust: the node CA, its join tokens and its records
// of joined workers are the group's. A join token created through the
// first core admits a worker, holding no cookie, that spends it through
// the second core; every core of the group accepts the worker's link.
// Revoked through the third core, the worker's link is refused by every
// core, each by its own copy of the record.
func TestGroupSharesNodeTrust(t *testing.T) {
	g := startGroup(t)
	const host, name = "127.0.0.4", "worker@127.0.0.4"
	tok, err := g.client(t, g.cores[0]).CreateJoinToken(ctxT(t, 30*time.Second), 10*time.Minute, name)
	if err != nil {
		t.Fatalf("create a join token through %s: %v", g.cores[0].host, err)
	}
	dir := t.TempDir()
	args := []string{"worker", "--data-dir", filepath.Join(dir, "worker"), "--node-addr", host + ":" + testcluster.Port(t, host),
		"--join-token", tok.Token, "--join-api", g.cores[1].url,
		"--cookie-file", filepath.Join(dir, "absent")} // no cookie: the token is the worker's only credential
	for _, m := range g.cores {
		args = append(args, "--join", m.nodeAddr)
	}
	w := testcluster.Start(t, dir, args...)
	for _, m := range g.cores {
		cl := g.client(t, m)
		wait.ForState(t, 60*time.Second, "core "+m.host+" lists the token-joined "+name, func() (bool, string) {
			ns, err := cl.ListNodes(ctxT(t, 5*time.Second))
			if err != nil {
				return false, err.Error()
			}
			return testcluster.Has(ns, name), "worker log tail:\n" + w.Process.Log.Tail(20)
		})
	}

	if err := g.client(t, g.cores[2]).RevokeNode(ctxT(t, 30*time.Second), name); err != nil {
		t.Fatalf("revoke %s through %s: %v", name, g.cores[2].host, err)
	}
	refused := regexp.MustCompile(`msg="node link refused" .*peer=` + regexp.QuoteMeta(name) + ` .*was revoked`)
	for _, m := range g.cores {
		cl := g.client(t, m)
		wait.ForState(t, 60*time.Second, "core "+m.host+" drops and refuses the revoked "+name, func() (bool, string) {
			ns, err := cl.ListNodes(ctxT(t, 5*time.Second))
			if err != nil {
				return false, err.Error()
			}
			return !testcluster.Has(ns, name) && refused.MatchString(m.Log()), "core log tail:\n" + m.Process.Log.Tail(20)
		})
	}
}
