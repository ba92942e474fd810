package nodes

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgefaas/edgefaas/internal/syncfile"
	"github.com/edgefaas/edgefaas/internal/version"
)

// A worker's side of the token join (docs/RATIONALE.md#why-the-node-ca-join-tokens-and-egress-bounds). `edgefaas worker
// --join-token T` sends the token and a certificate request for its node
// name to the core's API (POST /v1/nodes/join) and keeps what it gets in
// DATA_DIR/node-tls: identity.pem (its certificate and key, 0600), ca.pem
// (what it trusts for cores) and cookie (0600). From then on it starts
// from those files, needing neither the token nor the cookie again.
//
// The token never travels in clear: over HTTPS the worker pins the API's
// certificate by the fingerprint the token carries (TOKEN.FINGERPRINT, as
// `edgefaas node token create` prints it), and plain HTTP is used only to a
// loopback address.

// enrollDir is where a worker keeps its issued identity.
func enrollDir(dataDir string) string { return filepath.Join(dataDir, "node-tls") }

// Enrolled reports whether dataDir holds an identity from a core.
func Enrolled(dataDir string) bool {
	_, err := os.Stat(filepath.Join(enrollDir(dataDir), "identity.pem"))
	return err == nil
}

// EnrolledCookie is the cluster cookie a core gave this worker at its join.
func EnrolledCookie(dataDir string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(enrollDir(dataDir), "cookie"))
	if err != nil {
		return "", false
	}
	return strings.TrimSpace(string(b)), true
}

// ErrJoinRefused is a core's refusal of a join token (unknown, used,
// expired, or for another node).
var ErrJoinRefused = errors.New("the core refused the join token")

// Enroll exchanges a one-time join token for a certificate naming name,
// issued by the core whose API is at apiURL, and keeps it in dataDir.
func Enroll(ctx context.Context, apiURL, token, name, dataDir string) error {
	secret, fingerprint, _ := strings.Cut(strings.TrimSpace(token), ".")
	if secret == "" {
		return errors.New("join token: empty")
	}
	u, err := url.Parse(apiURL)
	if err != nil || u.Host == "" {
		return fmt.Errorf("--join-api %q: want http(s)://HOST:PORT", apiURL)
	}
	tr := &http.Transport{Proxy: nil}
	switch u.Scheme {
	case "https":
		if fingerprint == "" {
			return errors.New("join token: it carries no API fingerprint to pin the core's HTTPS certificate (create it on a core that serves HTTPS)")
		}
		want, err := hex.DecodeString(fingerprint)
		if err != nil || len(want) != sha256.Size {
			return errors.New("join token: malformed fingerprint")
		}
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true, // pinned below
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				if len(raw) == 0 {
					return errors.New("the core sent no certificate")
				}
				sum := sha256.Sum256(raw[0])
				if subtle.ConstantTimeCompare(sum[:], want) != 1 {
					return errors.New("the core's HTTPS certificate does not match the fingerprint in the join token")
				}
				return nil
			}}
	case "http":
		host := u.Hostname()
		ip := net.ParseIP(host)
		if !(host == "localhost" || (ip != nil && ip.IsLoopback())) {
			return fmt.Errorf("--join-api %s: plain HTTP beyond loopback would send the join token in clear; use the core's HTTPS address", apiURL)
		}
	default:
		return fmt.Errorf("--join-api %q: want http(s)://HOST:PORT", apiURL)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{Organization: []string{"edgefaas"}, CommonName: name}, URIs: []*url.URL{nodeURI(name)},
	}, key)
	if err != nil {
		return fmt.Errorf("certificate request: %w", err)
	}
	body, _ := json.Marshal(map[string]any{"token": secret, "node": name, "csr": csr, "version": version.Get().Version})
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(u.String(), "/")+"/v1/nodes/join", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("join %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusUnauthorized {
		return fmt.Errorf("%w: %s", ErrJoinRefused, strings.TrimSpace(string(raw)))
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("join %s: %s: %s", u.Host, resp.Status, strings.TrimSpace(string(raw)))
	}
	var out struct {
		Data struct {
			Certificate, CA, Cookie, Serial string
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("join %s: answer: %w", u.Host, err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	identity := append([]byte(out.Data.Certificate), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})...)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(out.Data.CA)) {
		return fmt.Errorf("join %s: the answer holds no CA certificate", u.Host)
	}
	if _, err := checkIdentity(identity, roots, name); err != nil {
		return fmt.Errorf("join %s: %w", u.Host, err)
	}
	dir := enrollDir(dataDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	// The identity last: its presence is what Enrolled tests.
	if err := syncfile.Write(filepath.Join(dir, "ca.pem"), []byte(out.Data.CA), 0o644); err != nil {
		return err
	}
	if err := syncfile.Write(filepath.Join(dir, "cookie"), []byte(out.Data.Cookie+"\n"), 0o600); err != nil {
		return err
	}
	return syncfile.Write(filepath.Join(dir, "identity.pem"), identity, 0o600)
}

// checkIdentity parses a certificate and key (PEM, one file) and checks
// that the certificate chains to roots and names node name.
func checkIdentity(identity []byte, roots *x509.CertPool, name string) (tls.Certificate, error) {
	pair, err := tls.X509KeyPair(identity, identity)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("node identity: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return tls.Certificate{}, err
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return tls.Certificate{}, fmt.Errorf("node identity: not signed by the core's CA: %w", err)
	}
	if !certNames(leaf, name) {
		return tls.Certificate{}, fmt.Errorf("node identity: the certificate names %q, not %q", leaf.Subject.CommonName, name)
	}
	pair.Leaf = leaf
	return pair, nil
}

// loadEnrollment is the worker's identity from dataDir, or nil when it
// never joined with a token; its rotate (for the reporter) adopts a rotated
// certificate: checked, kept (atomically, one file) and presented from
// the next handshake.
func loadEnrollment(dataDir, name string) (*nodeAuth, error) {
	if dataDir == "" || !Enrolled(dataDir) {
		return nil, nil
	}
	dir := enrollDir(dataDir)
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		return nil, fmt.Errorf("node identity: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("node identity: %s holds no certificate", filepath.Join(dir, "ca.pem"))
	}
	identity, err := os.ReadFile(filepath.Join(dir, "identity.pem"))
	if err != nil {
		return nil, fmt.Errorf("node identity: %w", err)
	}
	pair, err := checkIdentity(identity, roots, name)
	if err != nil {
		return nil, fmt.Errorf("%w (joined under another name? start with --node-name, or remove %s and join again)", err, dir)
	}
	a := &nodeAuth{roots: roots}
	a.cert.Store(&pair)
	a.rotate = func(cert, key []byte) error {
		id := append(append([]byte(nil), cert...), key...)
		pair, err := checkIdentity(id, roots, name)
		if err != nil {
			return err
		}
		// Only the CA that issued the current certificate (the core's, not
		// the cookie's beside it in ca.pem) may replace it.
		cur := a.cert.Load()
		if cur == nil || cur.Leaf == nil || !sameIssuer(cur.Leaf, pair.Leaf, caPEM) {
			return errors.New("node identity: the rotated certificate is not from the CA that issued the current one")
		}
		if err := syncfile.Write(filepath.Join(dir, "identity.pem"), id, 0o600); err != nil {
			return fmt.Errorf("keep the rotated certificate: %w", err)
		}
		a.cert.Store(&pair)
		return nil
	}
	return a, nil
}

// sameIssuer reports whether next is signed by the certificate of bundle
// (PEM) that signed cur.
func sameIssuer(cur, next *x509.Certificate, bundle []byte) bool {
	for rest := bundle; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return false
		}
		ca, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			continue
		}
		if cur.CheckSignatureFrom(ca) == nil {
			return next.CheckSignatureFrom(ca) == nil
		}
	}
}
