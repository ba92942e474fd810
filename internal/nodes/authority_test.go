package nodes

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/testing/storetest"
)

func csrFor(t *testing.T, name string) []byte {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: name}, URIs: []*url.URL{nodeURI(name)}}, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func leaf(t *testing.T, p string) *x509.Certificate {
	b, _ := pem.Decode([]byte(p))
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAuthorityRecords: what the core's records let through after each
// admin action, on the plain Go type (the binary tests: tests/reliability
// TestTokenJoin).
func TestAuthorityRecords(t *testing.T) {
	dir := t.TempDir()
	st := storetest.Open(t, filepath.Join(dir, "db"), nil)
	a, _, err := newAuthority(st, dir, JoinAny, "cookie-1", "core@127.0.0.1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "node-ca", "ca.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("CA key: %v %v", fi, err)
	}
	// The CA survives a restart: the same certificate.
	a2, _, err := newAuthority(st, dir, JoinAny, "cookie-1", "core@127.0.0.1", nil)
	if err != nil || !a2.ca.Equal(a.ca) {
		t.Fatalf("CA after restart: %v", err)
	}
	const w = "worker@10.0.0.7"
	if _, err := a.Enroll("bogus", w, csrFor(t, w)); !errors.Is(err, cluster.ErrJoinRefused) {
		t.Fatalf("bogus token: %v", err)
	}
	tok, _, _ := st.CreateJoinToken("worker@other", time.Hour)
	if _, err := a.Enroll(tok, w, csrFor(t, w)); !errors.Is(err, cluster.ErrJoinRefused) {
		t.Fatalf("token for another node: %v", err)
	}
	tok, _, _ = st.CreateJoinToken("", time.Hour)
	enr, err := a.Enroll(tok, w, csrFor(t, w))
	if err != nil {
		t.Fatal(err)
	}
	first := leaf(t, enr.Certificate)
	if !certNames(first, w) || a.check(w, first) != nil {
		t.Fatalf("issued certificate refused: %v", a.check(w, first))
	}
	// A cookie certificate cannot speak for a token-joined name; for
	// another name it still can (JoinAny).
	cc, _, _ := clusterCert("cookie-1", w)
	cookieLeaf, _ := x509.ParseCertificate(cc.Certificate[0])
	if err := a.check(w, cookieLeaf); !errors.Is(err, errRefused) {
		t.Fatalf("cookie certificate for a token-joined name: %v", err)
	}
	oc, _, _ := clusterCert("cookie-1", "worker@10.0.0.8")
	otherLeaf, _ := x509.ParseCertificate(oc.Certificate[0])
	if err := a.check("worker@10.0.0.8", otherLeaf); err != nil {
		t.Fatalf("cookie worker in JoinAny: %v", err)
	}
	strict := *a
	strict.mode = JoinToken
	if err := strict.check("worker@10.0.0.8", otherLeaf); !errors.Is(err, errRefused) {
		t.Fatalf("cookie worker in JoinToken: %v", err)
	}
	// Rotation: the old certificate stays valid until the new one is seen.
	var sent []byte
	a.send = func(_ string, cert, _ []byte) error { sent = cert; return nil }
	if _, err := a.RotateNode(w); err != nil {
		t.Fatal(err)
	}
	second := leaf(t, string(sent))
	if err := a.check(w, first); err != nil { // until the node connects with the new one
		t.Fatalf("old certificate during the rotation: %v", err)
	}
	if err := a.check(w, second); err != nil { // first connection with the new one
		t.Fatal(err)
	}
	if err := a.check(w, first); !errors.Is(err, errRefused) {
		t.Fatalf("old certificate after the rotation: %v", err)
	}
	// Revocation: refused, whatever certificate.
	var dropped string
	a.disconnect = func(n string) error { dropped = n; return nil }
	if err := a.RevokeNode(w); err != nil || dropped != w {
		t.Fatalf("revoke: %v, dropped %q", err, dropped)
	}
	if err := a.check(w, second); !errors.Is(err, errRefused) {
		t.Fatalf("revoked: %v", err)
	}
	if err := a.RevokeNode("worker@nobody"); !errors.Is(err, cluster.ErrNodeUnknown) {
		t.Fatalf("unknown node: %v", err)
	}
}

// TestRotationOnlyFromIssuer: a token-joined worker adopts a rotated
// certificate from the core's CA, never one a cookie holder minted.
func TestRotationOnlyFromIssuer(t *testing.T) {
	dir := t.TempDir()
	st := storetest.Open(t, filepath.Join(dir, "db"), nil)
	a, _, err := newAuthority(st, dir, JoinAny, "cookie-1", "core@127.0.0.1", nil)
	if err != nil {
		t.Fatal(err)
	}
	const w = "worker@10.0.0.7"
	tok, _, _ := st.CreateJoinToken("", time.Hour)
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: w}, URIs: []*url.URL{nodeURI(w)}}, k)
	enr, err := a.Enroll(tok, w, csr)
	if err != nil {
		t.Fatal(err)
	}
	wdir := t.TempDir()
	tlsDir := enrollDir(wdir)
	os.MkdirAll(tlsDir, 0o700)
	kder, _ := x509.MarshalECPrivateKey(k)
	os.WriteFile(filepath.Join(tlsDir, "identity.pem"), append([]byte(enr.Certificate), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})...), 0o600)
	os.WriteFile(filepath.Join(tlsDir, "ca.pem"), []byte(enr.CA), 0o644)
	auth, err := loadEnrollment(wdir, w)
	if err != nil || auth == nil {
		t.Fatalf("load: %v", err)
	}
	// A cookie holder's certificate naming the worker: refused.
	cc, _, _ := clusterCert("cookie-1", w)
	ck, _ := x509.MarshalECPrivateKey(cc.PrivateKey.(*ecdsa.PrivateKey))
	if err := auth.rotate(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cc.Certificate[0]}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ck})); err == nil {
		t.Fatal("a cookie certificate replaced the worker's identity")
	}
	// The core's rotation: adopted.
	var cert, key []byte
	a.send = func(_ string, c, k []byte) error { cert, key = c, k; return nil }
	if _, err := a.RotateNode(w); err != nil {
		t.Fatal(err)
	}
	if err := auth.rotate(cert, key); err != nil {
		t.Fatalf("the core's rotation: %v", err)
	}
	if got := auth.cert.Load(); got == nil || !bytes.Equal(got.Certificate[0], leaf(t, string(cert)).Raw) {
		t.Fatal("the worker does not present the rotated certificate")
	}
}

// TestJoinChecksTheTokenFirst: the join route is public, so what an
// unauthenticated caller can make the core do is bounded by what it does
// before the token is checked. A request without a valid token is refused
// for its token, whatever its certificate request holds; a request whose
// certificate request is refused leaves the token unspent; and only the
// key type workers make (ECDSA P-256) is verified at all.
func TestJoinChecksTheTokenFirst(t *testing.T) {
	dir := t.TempDir()
	st := storetest.Open(t, filepath.Join(dir, "db"), nil)
	a, _, err := newAuthority(st, dir, JoinAny, "cookie-1", "core@127.0.0.1", nil)
	if err != nil {
		t.Fatal(err)
	}
	const w = "worker@10.0.0.7"
	forged := csrFor(t, w)
	forged[len(forged)-1] ^= 0xff // the last byte is the signature's
	if _, err := x509.ParseCertificateRequest(forged); err != nil {
		t.Fatalf("the forged request does not parse: the test proves nothing: %v", err)
	}
	if _, err := a.Enroll("bogus", w, forged); !errors.Is(err, cluster.ErrJoinRefused) || !strings.Contains(err.Error(), "token") || strings.Contains(err.Error(), "signature") {
		t.Fatalf("bogus token with a forged request: %v; want it refused for the token", err)
	}
	tok, _, _ := st.CreateJoinToken("", time.Hour)
	if _, err := a.Enroll(tok, w, forged); !errors.Is(err, cluster.ErrJoinRefused) || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("forged request with a valid token: %v; want it refused for its signature", err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaCSR, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: w}, URIs: []*url.URL{nodeURI(w)}}, rsaKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Enroll(tok, w, rsaCSR); !errors.Is(err, cluster.ErrJoinRefused) || !strings.Contains(err.Error(), "P-256") {
		t.Fatalf("RSA request: %v; want it refused for its key type", err)
	}
	if _, err := a.Enroll(tok, w, csrFor(t, w)); err != nil {
		t.Fatalf("the token after refused requests: %v; want it unspent", err)
	}
	if _, err := a.Enroll(tok, w, csrFor(t, w)); !errors.Is(err, cluster.ErrJoinRefused) {
		t.Fatalf("the token used twice: %v", err)
	}
}

// TestEnrollRefusesTakenNames: a join token buys a new name only. The
// core's role (its own name or any core@…), a name that already has a
// record (a live worker's: its record would be overwritten and the worker
// locked out) and a revoked name (a revocation is final) are refused, and
// the refusal leaves the token unspent and the records as they were.
func TestEnrollRefusesTakenNames(t *testing.T) {
	dir := t.TempDir()
	st := storetest.Open(t, filepath.Join(dir, "db"), nil)
	a, _, err := newAuthority(st, dir, JoinToken, "cookie-1", "core@127.0.0.1", nil)
	if err != nil {
		t.Fatal(err)
	}
	const live, revoked = "worker@10.0.0.7", "worker@10.0.0.8"
	for _, w := range []string{live, revoked} {
		tok, _, _ := st.CreateJoinToken("", time.Hour)
		if _, err := a.Enroll(tok, w, csrFor(t, w)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.RevokeNode(revoked); err != nil {
		t.Fatal(err)
	}
	before, _ := st.GetNodeCert(live)
	tok, _, _ := st.CreateJoinToken("", time.Hour)
	for _, name := range []string{"core@127.0.0.1", "core@10.0.0.9", "core2@10.0.0.9", live, revoked} {
		if _, err := a.Enroll(tok, name, csrFor(t, name)); !errors.Is(err, cluster.ErrJoinRefused) {
			t.Errorf("enroll as %s: %v, want refused", name, err)
		}
	}
	if after, _ := st.GetNodeCert(live); after.Serial != before.Serial || after.Revoked {
		t.Fatalf("the live worker's record changed: %+v → %+v", before, after)
	}
	if nc, _ := st.GetNodeCert(revoked); !nc.Revoked {
		t.Fatal("the revoked name was un-revoked")
	}
	if _, err := a.Enroll(tok, "worker@10.0.0.10", csrFor(t, "worker@10.0.0.10")); err != nil {
		t.Fatalf("a new name with the token after the refusals: %v; want it unspent", err)
	}
}

// TestJoinAnyWarns: a core that admits cookie certificates says at start
// that revocation does not hold there; one in JoinToken does not, nor
// one left at the default (auto, or no mode), which is JoinToken.
func TestJoinAnyWarns(t *testing.T) {
	for _, c := range []struct {
		mode JoinMode
		warn bool
	}{{JoinAny, true}, {JoinToken, false}, {JoinAuto, false}, {"", false}} {
		dir := t.TempDir()
		st := storetest.Open(t, filepath.Join(dir, "db"), nil)
		var buf bytes.Buffer
		a, _, err := newAuthority(st, dir, c.mode, "cookie-1", "core@127.0.0.1", slog.New(slog.NewTextHandler(&buf, nil)))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(buf.String(), "level=WARN") && strings.Contains(buf.String(), "--node-join any"); got != c.warn {
			t.Errorf("%q: warned %v, want %v:\n%s", c.mode, got, c.warn, buf.String())
		}
		if want := map[bool]JoinMode{true: JoinAny, false: JoinToken}[c.warn]; a.mode != want {
			t.Errorf("%q: mode %q, want %q", c.mode, a.mode, want)
		}
	}
}

// TestTokenModeCookieMintsNothing: in JoinToken what a worker holds (its
// key, its certificate, the CA bundle and the cookie it was given) mints
// no identity anyone accepts: the bundle holds the core's CA only, and a
// certificate the cookie's CA signs, for any name, is refused.
func TestTokenModeCookieMintsNothing(t *testing.T) {
	dir := t.TempDir()
	st := storetest.Open(t, filepath.Join(dir, "db"), nil)
	a, _, err := newAuthority(st, dir, JoinToken, "cookie-1", "core@127.0.0.1", nil)
	if err != nil {
		t.Fatal(err)
	}
	const w = "worker@10.0.0.7"
	tok, _, _ := st.CreateJoinToken("", time.Hour)
	enr, err := a.Enroll(tok, w, csrFor(t, w))
	if err != nil {
		t.Fatal(err)
	}
	cookieCA, _, _ := clusterCA(enr.Cookie)
	var cas int
	for rest := []byte(enr.CA); ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		cas++
		if bytes.Equal(b.Bytes, cookieCA.Raw) {
			t.Fatal("the CA bundle a worker gets holds the cookie's CA")
		}
	}
	if cas != 1 {
		t.Fatalf("the CA bundle holds %d certificates, want the core's only", cas)
	}
	for _, name := range []string{w, "worker@10.0.0.99", "core@127.0.0.1"} {
		cc, _, _ := clusterCert(enr.Cookie, name)
		leaf, _ := x509.ParseCertificate(cc.Certificate[0])
		if err := a.check(name, leaf); !errors.Is(err, errRefused) {
			t.Errorf("a cookie certificate for %s: %v, want refused", name, err)
		}
	}
}
