package reliability_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
)

// ca is a test certificate authority.
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  string
}

func newCA(t *testing.T, dir, name string) *ca {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := filepath.Join(dir, name+".pem")
	os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	return &ca{cert, key, p}
}

// issue writes a certificate for host signed by c, returning cert and key paths.
func (c *ca) issue(t *testing.T, dir, name, host string) (string, string) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP(host)}, DNSNames: []string{host}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	cp, kp := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	os.WriteFile(cp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(kp, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cp, kp
}

// TestNodeJoinRefused: a worker with a wrong cookie, a client speaking
// plain TCP (no TLS) and a worker with a certificate from another CA are
// all refused by the core — never listed, never sent work — and a
// correctly configured worker still joins. What the core and the refused
// node log about each refusal is reported.
func TestNodeJoinRefused(t *testing.T) {
	dir := t.TempDir()
	ca1, ca2 := newCA(t, dir, "ca1"), newCA(t, dir, "ca2")
	coreCert, coreKey := ca1.issue(t, dir, "core", "127.0.0.1")
	core := testcluster.StartCore(t, "--tls-cert", coreCert, "--tls-key", coreKey, "--tls-ca", ca1.pem)
	refusals := 0
	notJoined := func(what, name string, w *testcluster.Proc) {
		t.Helper()
		ns, err := core.Client(core.Admin).ListNodes(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if testcluster.Has(ns, name) {
			t.Fatalf("%s: %s joined", what, name)
		}
		refusals++
		wl := ""
		if w != nil {
			wl = lastLines(w.Log(), 3)
		}
		t.Logf("%s refused.\n  core log: %s\n  peer log: %s", what, refusalLines(core.Log()), wl)
	}

	// 1. No TLS: a peer that speaks ergo's handshake in clear text.
	conn, err := net.DialTimeout("tcp", core.NodeAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte{0, 20, 'N', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 11, 'w', '@', '1', '2', '7'})
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	n, rerr := conn.Read(buf)
	conn.Close()
	if n > 0 && !strings.HasPrefix(string(buf[:n]), "\x15\x03") { // only a TLS alert is acceptable
		t.Fatalf("plain-text peer got %q", buf[:n])
	}
	t.Logf("plain-text peer: read %d bytes %q, %v", n, buf[:n], rerr)

	// 2. Wrong cookie (valid certificate).
	wc, wk := ca1.issue(t, dir, "w1", "127.0.0.2")
	w1 := testcluster.Start(t, t.TempDir(), "worker", "--data-dir", filepath.Join(t.TempDir(), "w"), "--node-addr", "127.0.0.2:0",
		"--join", core.NodeAddr, "--cookie", "0000000000000000not-the-cores-cookie", "--tls-cert", wc, "--tls-key", wk, "--tls-ca", ca1.pem)

	// 3. A certificate from another CA (and the right cookie).
	oc, ok := ca2.issue(t, dir, "w3", "127.0.0.3")
	w3 := testcluster.Start(t, t.TempDir(), "worker", "--data-dir", filepath.Join(t.TempDir(), "w"), "--node-addr", "127.0.0.3:0",
		"--join", core.NodeAddr, "--cookie-file", core.CookieFile(), "--tls-cert", oc, "--tls-key", ok, "--tls-ca", ca1.pem)

	// 4. Self-signed worker (default TLS) against a CA-verifying core.
	w4 := testcluster.Start(t, t.TempDir(), "worker", "--data-dir", filepath.Join(t.TempDir(), "w"), "--node-addr", "127.0.0.4:0",
		"--join", core.NodeAddr, "--cookie-file", core.CookieFile())

	// Give them, all at once, the time a join takes many times over: this
	// proves an absence, and which side logs a refusal differs case by case.
	time.Sleep(3 * time.Second)
	notJoined("no TLS", "w@127", nil)
	notJoined("wrong cookie", "worker@127.0.0.2", w1)
	notJoined("certificate from another CA", "worker@127.0.0.3", w3)
	notJoined("self-signed certificate", "worker@127.0.0.4", w4)
	w1.Kill()
	w3.Kill()
	w4.Kill()

	// The right cookie and a certificate of the CA: joins.
	gc, gk := ca1.issue(t, dir, "w5", "127.0.0.5")
	core.StartWorker(t, "127.0.0.5", "--tls-cert", gc, "--tls-key", gk, "--tls-ca", ca1.pem)
	core.WaitWorkers(t, func(ns []client.Node) bool { return testcluster.Has(ns, "worker@127.0.0.5") })

	logged := strings.Count(refusalLines(core.Log()), "\n")
	record(row{Test: "node joins: wrong cookie, no TLS, other CA, self-signed", Faults: refusals, Sent: refusals, Answered: refusals, FailedFast: refusals,
		Note: fmt.Sprintf("all %d refused, none listed; core log lines about them: %d", refusals, logged)})
}

// refusalLines are the core's log lines about refused links.
func refusalLines(log string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		ll := strings.ToLower(l)
		if !strings.Contains(ll, "level=warn") {
			continue
		}
		if strings.Contains(ll, "handshake") || strings.Contains(ll, "cookie") && !strings.Contains(ll, "first boot") ||
			strings.Contains(ll, "tls") || strings.Contains(ll, "certificate") || strings.Contains(ll, "refused") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n") + "\n"
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}
