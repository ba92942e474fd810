package reliability_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// The token join (docs/RATIONALE.md#why-the-node-ca-join-tokens-and-egress-bounds): the core's own CA, one-time join tokens, and
// rotating or revoking one worker, with real core and worker processes.

// edgefaasCLI runs the binary's CLI against core with the admin token.
func edgefaasCLI(t *testing.T, core *testcluster.Core, args ...string) string {
	t.Helper()
	out, err := exec.Command(testcluster.Binary(t), append(args, "--host", core.URL, "--token", core.Admin)...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("edgefaas %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return strings.TrimSpace(string(out))
}

// tokenWorker starts a worker on host that joins with token and no cookie.
func tokenWorker(t *testing.T, core *testcluster.Core, host, token string) *testcluster.Proc {
	dir := t.TempDir()
	return testcluster.Start(t, dir, "worker", "--data-dir", filepath.Join(dir, "worker"),
		"--node-addr", net.JoinHostPort(host, testcluster.Port(t, host)), "--join", core.NodeAddr,
		"--join-token", token, "--join-api", core.URL,
		"--cookie-file", filepath.Join(dir, "absent")) // as the systemd unit's default, with no cookie copied
}

// countLog counts p's log lines matching re.
func countLog(p *testcluster.Proc, re *regexp.Regexp) int {
	n := 0
	for _, l := range strings.Split(p.Log(), "\n") {
		if re.MatchString(l) {
			n++
		}
	}
	return n
}

// waitCount polls until p's log has more than n lines matching re.
func waitCount(t *testing.T, p *testcluster.Proc, re *regexp.Regexp, n int) {
	t.Helper()
	if err := wait.Until(context.Background(), 30*time.Second, fmt.Sprintf("more than %d log lines matching %s", n, re), func() bool {
		return countLog(p, re) > n
	}); err != nil {
		t.Fatalf("%v; log:\n%s", err, p.Log())
	}
}

func refusedRE(peer, why string) *regexp.Regexp {
	return regexp.MustCompile(`msg="node link refused" .*peer=` + regexp.QuoteMeta(peer) + ` .*` + why)
}

// TestTokenJoin: a core that accepts token-joined workers only.
func TestTokenJoin(t *testing.T) {
	core := testcluster.StartCore(t, "--node-join", "token")
	adm := core.Client(core.Admin)
	if _, err := adm.CreateFunction(ctxT(t), "_", client.Upload{Name: "echo", Code: testmodules.Read(t, "test/echo")}); err != nil {
		t.Fatal(err)
	}
	echo := func() outcome { return call(adm, "_", "echo", `{"x":1}`, time.Minute, 0) }

	// The core made its CA on first boot, key 0600.
	if st, err := os.Stat(filepath.Join(core.Dir, "core", "node-ca", "ca.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("CA key: %v %v", st, err)
	}

	// A worker with a valid one-time token joins and runs an invocation.
	token := edgefaasCLI(t, core, "node", "token", "create", "--ttl", "10m")
	t0 := time.Now()
	a := tokenWorker(t, core, "127.0.0.2", token)
	core.WaitWorkers(t, func(ns []client.Node) bool { return testcluster.Has(ns, "worker@127.0.0.2") })
	t.Logf("token join: process start → listed: %s (recorded, not asserted)", time.Since(t0).Round(time.Millisecond))
	if o := echo(); o.status != 200 {
		t.Fatalf("invocation on the token-joined worker: %d %s", o.status, o.detail)
	}
	if st, err := os.Stat(filepath.Join(a.Dir, "worker", "node-tls", "identity.pem")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("worker identity: %v %v", st, err)
	}

	// The same token again, a forged one, none at all: refused.
	for _, tc := range []struct{ name, token, want string }{
		{"reused", token, "refused the join token"},
		{"forged", "Zm9yZ2VkLXRva2VuLWZvcmdlZC10b2tlbi1mb3JnZWQtdG9rZW4", "refused the join token"},
	} {
		dir := t.TempDir()
		out, err := exec.Command(testcluster.Binary(t), "worker", "--data-dir", dir, "--node-addr", "127.0.0.3:"+testcluster.Port(t, "127.0.0.3"),
			"--join", core.NodeAddr, "--join-token", tc.token, "--join-api", core.URL).CombinedOutput()
		if err == nil || !bytes.Contains(out, []byte(tc.want)) {
			t.Fatalf("%s token: err %v, output %s", tc.name, err, out)
		}
		if _, err := os.Stat(filepath.Join(dir, "node-tls", "identity.pem")); err == nil {
			t.Fatalf("%s token: the worker kept an identity", tc.name)
		}
		t.Logf("%s token: refused: %s", tc.name, trim(strings.TrimSpace(string(out)), 140))
	}
	// With the cookie but no token (a cookie-derived certificate): refused
	// at the TLS handshake (this core trusts its own CA only), never listed
	// while it retries.
	tlsRefused := regexp.MustCompile(`msg="node link refused: handshake failed`)
	before := countLog(core.Proc, tlsRefused)
	dir := t.TempDir()
	testcluster.Start(t, dir, "worker", "--data-dir", filepath.Join(dir, "w"), "--node-addr", "127.0.0.4:"+testcluster.Port(t, "127.0.0.4"),
		"--join", core.NodeAddr, "--cookie-file", core.CookieFile())
	waitCount(t, core.Proc, tlsRefused, before+2) // three attempts refused
	if ns, _ := adm.ListNodes(ctxT(t)); testcluster.Has(ns, "worker@127.0.0.4") {
		t.Fatal("a cookie-only worker was listed")
	}

	// No credentials at all: the worker does not start.
	if out, err := exec.Command(testcluster.Binary(t), "worker", "--data-dir", t.TempDir(), "--node-addr", "127.0.0.7:0",
		"--join", core.NodeAddr).CombinedOutput(); err == nil || !bytes.Contains(out, []byte("no node cookie")) {
		t.Fatalf("no credentials: err %v, output %s", err, out)
	}
	// A forged identity: a certificate naming the worker from a CA of its
	// own (which it trusts beside the core's), with the right cookie.
	fdir := t.TempDir()
	forger := newCA(t, fdir, "forger")
	fc, fk := forger.issue(t, fdir, "w7", "127.0.0.7")
	tlsDir := filepath.Join(fdir, "worker", "node-tls")
	os.MkdirAll(tlsDir, 0o700)
	coreCA, _ := os.ReadFile(filepath.Join(core.Dir, "core", "node-ca", "ca.crt"))
	forgerCA, _ := os.ReadFile(forger.pem)
	cb, _ := os.ReadFile(fc)
	kb, _ := os.ReadFile(fk)
	cookie, _ := os.ReadFile(core.CookieFile())
	os.WriteFile(filepath.Join(tlsDir, "ca.pem"), append(coreCA, forgerCA...), 0o644)
	os.WriteFile(filepath.Join(tlsDir, "identity.pem"), append(cb, kb...), 0o600)
	os.WriteFile(filepath.Join(tlsDir, "cookie"), cookie, 0o600)
	before = countLog(core.Proc, tlsRefused)
	forged := testcluster.Start(t, fdir, "worker", "--data-dir", filepath.Join(fdir, "worker"), "--node-addr", "127.0.0.7:"+testcluster.Port(t, "127.0.0.7"),
		"--join", core.NodeAddr)
	waitCount(t, core.Proc, tlsRefused, before+2)
	if ns, _ := adm.ListNodes(ctxT(t)); testcluster.Has(ns, "worker@127.0.0.7") {
		t.Fatal("a worker with a forged certificate was listed")
	}
	forged.Kill()

	// Rotate a second worker: it keeps working over its link; restarted,
	// it presents the new certificate; its old one is refused from then on.
	b := tokenWorker(t, core, "127.0.0.5", edgefaasCLI(t, core, "node", "token", "create", "--node", "worker@127.0.0.5"))
	core.WaitWorkers(t, func(ns []client.Node) bool { return testcluster.Has(ns, "worker@127.0.0.5") })
	idPath := filepath.Join(b.Dir, "worker", "node-tls", "identity.pem")
	oldID, err := os.ReadFile(idPath)
	if err != nil {
		t.Fatal(err)
	}
	if out := edgefaasCLI(t, core, "node", "rotate", "worker@127.0.0.5"); !strings.Contains(out, "rotated worker@127.0.0.5") {
		t.Fatalf("rotate printed %q", out)
	}
	b.WaitLog(regexp.MustCompile(`msg="node certificate rotated`), 30*time.Second)
	if id, _ := os.ReadFile(idPath); bytes.Equal(id, oldID) {
		t.Fatal("the worker did not keep its rotated certificate")
	}
	a.Kill() // only b can run calls now
	core.WaitWorkers(t, func(ns []client.Node) bool { return !testcluster.Has(ns, "worker@127.0.0.2") })
	if o := echo(); o.status != 200 {
		t.Fatalf("invocation after rotate: %d %s", o.status, o.detail)
	}
	b.Kill()
	core.WaitWorkers(t, func(ns []client.Node) bool { return !testcluster.Has(ns, "worker@127.0.0.5") })
	b.Restart() // same command line: already joined, the token is not used again
	core.WaitWorkers(t, func(ns []client.Node) bool { return testcluster.Has(ns, "worker@127.0.0.5") })
	if o := echo(); o.status != 200 {
		t.Fatalf("invocation after the rotated worker restarted: %d %s", o.status, o.detail)
	}
	b.Kill()
	core.WaitWorkers(t, func(ns []client.Node) bool { return !testcluster.Has(ns, "worker@127.0.0.5") })
	if err := os.WriteFile(idPath, oldID, 0o600); err != nil {
		t.Fatal(err)
	}
	superseded := refusedRE("worker@127.0.0.5", "superseded")
	n := countLog(core.Proc, superseded)
	b.Restart()
	waitCount(t, core.Proc, superseded, n)
	b.Kill()

	// Revoke a running worker: its link is dropped, the core schedules
	// nothing on it, and its reconnections are refused.
	c := tokenWorker(t, core, "127.0.0.6", edgefaasCLI(t, core, "node", "token", "create"))
	core.WaitWorkers(t, func(ns []client.Node) bool {
		return testcluster.Has(ns, "worker@127.0.0.6") && !testcluster.Has(ns, "worker@127.0.0.5")
	})
	if o := echo(); o.status != 200 {
		t.Fatalf("invocation before revoke: %d %s", o.status, o.detail)
	}
	revoked := refusedRE("worker@127.0.0.6", "was revoked")
	n = countLog(core.Proc, revoked)
	t0 = time.Now()
	edgefaasCLI(t, core, "node", "revoke", "worker@127.0.0.6")
	core.WaitWorkers(t, func(ns []client.Node) bool { return !testcluster.Has(ns, "worker@127.0.0.6") })
	t.Logf("revoke → worker gone from the table: %s (CLI included; recorded, not asserted)", time.Since(t0).Round(time.Millisecond))
	waitCount(t, core.Proc, revoked, n+1) // it tried again, twice, and was refused
	if ns, _ := adm.ListNodes(ctxT(t)); len(ns) != 0 {
		t.Fatalf("workers listed after revoke: %v", ns)
	}
	if o := echo(); o.status != 503 {
		t.Fatalf("invocation with the only worker revoked: %d %s, want 503", o.status, o.detail)
	}
	// The revocation is durable: after kill -9 of the core and a restart it
	// still holds.
	core.Kill()
	core.Restart()
	n = countLog(core.Proc, revoked)
	waitCount(t, core.Proc, revoked, n)
	if ns, _ := adm.ListNodes(ctxT(t)); testcluster.Has(ns, "worker@127.0.0.6") {
		t.Fatal("a revoked worker is back after the core restarted")
	}
	if out := edgefaasCLI(t, core, "node", "certs"); !regexp.MustCompile(`worker@127\.0\.0\.6\s+\S+\s+\S+\s+revoked`).MatchString(out) {
		t.Fatalf("node certs does not show the revocation:\n%s", out)
	}
	_ = c
}

// TestTokenJoinBesideCookie: a core in --node-join any (a site moving
// from the cookie to tokens) takes a token-joined worker and a cookie
// worker side by side, and a token-joined name cannot be taken with the
// cookie.
func TestTokenJoinBesideCookie(t *testing.T) {
	core := testcluster.StartCore(t, "--node-join", "any")
	adm := core.Client(core.Admin)
	if _, err := adm.CreateFunction(ctxT(t), "_", client.Upload{Name: "echo", Code: testmodules.Read(t, "test/echo")}); err != nil {
		t.Fatal(err)
	}
	tw := tokenWorker(t, core, "127.0.0.2", edgefaasCLI(t, core, "node", "token", "create"))
	core.StartWorker(t, "127.0.0.3")
	core.WaitWorkers(t, func(ns []client.Node) bool {
		return testcluster.Has(ns, "worker@127.0.0.2") && testcluster.Has(ns, "worker@127.0.0.3")
	})
	for range 4 {
		if o := call(adm, "_", "echo", `{}`, time.Minute, 0); o.status != 200 {
			t.Fatalf("invocation: %d %s", o.status, o.detail)
		}
	}
	// The token-joined worker stops; a cookie worker claiming its name is refused.
	tw.Kill()
	core.WaitWorkers(t, func(ns []client.Node) bool { return !testcluster.Has(ns, "worker@127.0.0.2") })
	re := refusedRE("worker@127.0.0.2", "cookie certificate cannot speak for it")
	n := countLog(core.Proc, re)
	dir := t.TempDir()
	testcluster.Start(t, dir, "worker", "--data-dir", filepath.Join(dir, "w"), "--node-addr", "127.0.0.2:"+testcluster.Port(t, "127.0.0.2"),
		"--join", core.NodeAddr, "--cookie-file", core.CookieFile())
	waitCount(t, core.Proc, re, n)
}

// TestTokenJoinHTTPS: with the API on HTTPS (self-signed) the token ends
// in the API certificate's fingerprint; the worker pins it, so the token
// goes only to that core. A token whose fingerprint was altered is never
// sent (the TLS handshake fails first) and stays valid.
func TestTokenJoinHTTPS(t *testing.T) {
	core := testcluster.StartCore(t, "--http-tls", "on", "--node-join", "token")
	fp := core.WaitLog(fingerprintRE, 10*time.Second)[1]
	url := strings.Replace(core.URL, "http://", "https://", 1)
	out, err := exec.Command(testcluster.Binary(t), "node", "token", "create", "--host", url, "--token", core.Admin, "--tls-fingerprint", fp).Output()
	if err != nil {
		t.Fatalf("token create: %v %s", err, out)
	}
	token := strings.TrimSpace(string(out))
	secret, got, ok := strings.Cut(token, ".")
	if !ok || got != fp {
		t.Fatalf("token %q does not end in the API fingerprint %s", token, fp)
	}
	worker := func(host, tok string) ([]byte, error) {
		dir := t.TempDir()
		cmd := exec.Command(testcluster.Binary(t), "worker", "--data-dir", dir, "--node-addr", host+":"+testcluster.Port(t, host),
			"--join", core.NodeAddr, "--join-token", tok, "--join-api", url)
		return cmd.CombinedOutput() // a joined worker runs until killed: only used for refusals
	}
	if out, err := worker("127.0.0.3", secret+"."+strings.Repeat("0", 64)); err == nil || !bytes.Contains(out, []byte("fingerprint")) {
		t.Fatalf("altered fingerprint: err %v, output %s", err, out)
	}
	if out, err := worker("127.0.0.3", secret); err == nil || !bytes.Contains(out, []byte("no API fingerprint")) {
		t.Fatalf("no fingerprint over HTTPS: err %v, output %s", err, out)
	}
	// The token was never spent: the real worker joins with it.
	dir := t.TempDir()
	testcluster.Start(t, dir, "worker", "--data-dir", filepath.Join(dir, "worker"), "--node-addr", "127.0.0.2:"+testcluster.Port(t, "127.0.0.2"),
		"--join", core.NodeAddr, "--join-token", token, "--join-api", url)
	cl, err := client.New(url, core.Admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.PinFingerprint(fp); err != nil {
		t.Fatal(err)
	}
	if err := wait.Until(context.Background(), 30*time.Second, "the worker joins over HTTPS", func() bool {
		ns, _ := cl.ListNodes(ctxT(t))
		return testcluster.Has(ns, "worker@127.0.0.2")
	}); err != nil {
		t.Fatalf("%v; core log:\n%s", err, core.Log())
	}
}

// TestOperatorCANameMismatch: with an operator CA (--tls-ca), a worker
// holding a valid certificate of that CA issued for another host is
// refused when it claims a name the certificate does not carry; the
// certificate's own name joins.
func TestOperatorCANameMismatch(t *testing.T) {
	dir := t.TempDir()
	ca1 := newCA(t, dir, "ca1")
	coreCert, coreKey := ca1.issue(t, dir, "core", "127.0.0.1")
	core := testcluster.StartCore(t, "--tls-cert", coreCert, "--tls-key", coreKey, "--tls-ca", ca1.pem)
	other, otherKey := ca1.issue(t, dir, "w6", "127.0.0.6") // a certificate for 127.0.0.6 ...
	re := refusedRE("worker@127.0.0.5", "does not name the node it claims")
	n := countLog(core.Proc, re)
	w := testcluster.Start(t, t.TempDir(), "worker", "--data-dir", filepath.Join(t.TempDir(), "w"), "--node-addr", "127.0.0.5:0", // ... claiming 127.0.0.5
		"--join", core.NodeAddr, "--cookie-file", core.CookieFile(), "--tls-cert", other, "--tls-key", otherKey, "--tls-ca", ca1.pem)
	waitCount(t, core.Proc, re, n+1)
	if ns, _ := core.Client(core.Admin).ListNodes(ctxT(t)); testcluster.Has(ns, "worker@127.0.0.5") {
		t.Fatal("a worker joined under a name its certificate does not carry")
	}
	w.Kill()
	core.StartWorker(t, "127.0.0.6", "--tls-cert", other, "--tls-key", otherKey, "--tls-ca", ca1.pem)
}

// TestNoTokensWithOperatorCA: a core on an operator CA issues no join tokens.
func TestNoTokensWithOperatorCA(t *testing.T) {
	dir := t.TempDir()
	ca1 := newCA(t, dir, "ca1")
	cc, ck := ca1.issue(t, dir, "core", "127.0.0.1")
	core := testcluster.StartCore(t, "--tls-cert", cc, "--tls-key", ck, "--tls-ca", ca1.pem)
	_, err := core.Client(core.Admin).CreateJoinToken(ctxT(t), 0, "")
	if !client.IsStatus(err, 409) || !strings.Contains(err.Error(), "operator CA") {
		t.Fatalf("join token on an operator-CA core: %v", err)
	}
}
