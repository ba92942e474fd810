package nodes

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/edgefaas/edgefaas/internal/actors/trust"
	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/syncfile"
)

// The core's own CA (docs/RATIONALE.md#why-the-node-ca-join-tokens-and-egress-bounds). On first boot a core creates a private CA
// in DATA_DIR/node-ca (key 0600, directory 0700). A worker that joins with
// a one-time token (storage.ConsumeJoinToken) gets a certificate naming it,
// signed by this CA (Enroll); the core keeps each such node's serial in
// pebble (n/NAME) and checks it after every handshake (check): a revoked
// node, or a certificate rotated away, is refused. JoinMode says whether
// the cookie-derived CA is still accepted beside it.

// JoinMode says which node certificates a core accepts.
type JoinMode string

const (
	// JoinAuto (the default): JoinToken with the core's own CA; with an
	// operator CA (--tls-cert/--tls-ca) that CA decides who joins, as
	// before.
	JoinAuto JoinMode = "auto"
	// JoinAny: certificates from the core's CA (token join) and from the
	// cookie's CA (every node holding the cookie), for a site moving its
	// cookie-only workers to tokens. A token-joined node's name cannot be
	// taken with a cookie certificate, but a revoked box can come back
	// under another name.
	JoinAny JoinMode = "any"
	// JoinToken: only certificates the core's CA issued. Holding the
	// cookie is not enough to join, no key is derived from it; revoking a
	// worker shuts it out.
	JoinToken JoinMode = "token"
)

// authority is a core's CA and its records.
type authority struct {
	store    *storage.Store
	records  storage.NodeRecords // the writes: store, or a core group's log
	mode     JoinMode
	ca       *x509.Certificate
	key      crypto.Signer
	caPEM    []byte // what enrolled workers trust: the core's CA, and in JoinAny the cookie's
	cookieCA *x509.Certificate
	cookie   string
	self     string // the core's own node name, never issued to a worker
	// disconnect drops a node's link; send delivers a rotated certificate
	// to a node's reporter. Both set once the node runs.
	disconnect func(name string) error
	send       func(name string, cert, key []byte) error
}

// caDir is where a core keeps its CA.
func caDir(dataDir string) string { return filepath.Join(dataDir, "node-ca") }

// loadOrCreateCA reads DATA_DIR/node-ca/{ca.crt,ca.key}, creating them on
// first boot (the key written 0600 and synced before the certificate, so a
// crash leaves no certificate without its key).
func loadOrCreateCA(dataDir string) (*x509.Certificate, crypto.Signer, error) {
	dir := caDir(dataDir)
	certPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	if cb, err := os.ReadFile(certPath); err == nil {
		kb, err := os.ReadFile(keyPath)
		if err != nil {
			return nil, nil, fmt.Errorf("node CA key: %w", err)
		}
		ca, key, err := parseCA(cb, kb)
		if err != nil {
			return nil, nil, fmt.Errorf("node CA %s: %w", dir, err)
		}
		return ca, key, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("node CA directory: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"edgefaas"}, CommonName: "edgefaas core CA " + serial.Text(16)[:12]},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(20, 0, 0),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("node CA certificate: %w", err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	if err := syncfile.Write(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return nil, nil, err
	}
	if err := syncfile.Write(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	return ca, key, err
}

// parseCA parses a CA's certificate and key (PEM).
func parseCA(certPEM, keyPEM []byte) (*x509.Certificate, crypto.Signer, error) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, err
	}
	key, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("node CA key: %T cannot sign", pair.PrivateKey)
	}
	return ca, key, nil
}

func randomSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// newAuthority loads (or creates) the core's CA and builds the core's own
// TLS identity: in JoinToken a certificate from its CA, in JoinAny one from
// the cookie's CA (which cookie-only workers verify), trusting both.
func newAuthority(store *storage.Store, dataDir string, mode JoinMode, cookie, name string, log *slog.Logger) (*authority, *nodeAuth, error) {
	return newAuthorityIn(store, nil, dataDir, mode, cookie, name, log)
}

// newAuthorityIn is newAuthority with the CA and the records of group, if
// set (a member of a core group), else the core's own.
func newAuthorityIn(store *storage.Store, group *GroupTrust, dataDir string, mode JoinMode, cookie, name string, log *slog.Logger) (*authority, *nodeAuth, error) {
	if mode == "" || mode == JoinAuto {
		mode = JoinToken
	}
	if mode != JoinAny && mode != JoinToken {
		return nil, nil, fmt.Errorf("node join mode %q: want %q, %q or %q", mode, JoinAuto, JoinToken, JoinAny)
	}
	_, statErr := os.Stat(filepath.Join(caDir(dataDir), "ca.crt"))
	var records storage.NodeRecords = store
	var ca *x509.Certificate
	var key crypto.Signer
	var err error
	if group != nil {
		records = group.Records
		ca, key, err = group.ca(store, dataDir, log)
		statErr = nil // the group's CA: created, if at all, by its first core
	} else {
		ca, key, err = loadOrCreateCA(dataDir)
	}
	if err != nil {
		return nil, nil, err
	}
	if statErr != nil && log != nil {
		log.Info("created the node CA; workers join with a one-time token from 'edgefaas node token create'", "path", caDir(dataDir), "join_mode", string(mode))
	}
	if mode == JoinAny && log != nil {
		log.Warn("node join mode any: any node holding the cluster cookie may join under a name of its choosing, so a revoked worker can come back under another; once every worker has joined with a token, start the core without --node-join any (docs/install.md)",
			"join_mode", string(mode))
	}
	a := &authority{store: store, records: records, mode: mode, ca: ca, key: key, cookie: cookie, self: name}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	a.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	auth := &nodeAuth{roots: roots, check: a.check}
	if mode == JoinAny {
		cookieCA, _, err := clusterCA(cookie)
		if err != nil {
			return nil, nil, err
		}
		a.cookieCA = cookieCA
		roots.AddCert(cookieCA)
		a.caPEM = append(a.caPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cookieCA.Raw})...)
		cert, _, err := clusterCert(cookie, name)
		if err != nil {
			return nil, nil, err
		}
		auth.cert.Store(&cert)
	} else {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		der, _, err := a.issue(name, &k.PublicKey)
		if err != nil {
			return nil, nil, err
		}
		auth.cert.Store(&tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k})
	}
	return a, auth, nil
}

// issue signs a certificate for node name and public key pub.
func (a *authority) issue(name string, pub crypto.PublicKey) ([]byte, string, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"edgefaas"}, CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(5, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		URIs:         []*url.URL{nodeURI(name)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.ca, pub, a.key)
	if err != nil {
		return nil, "", fmt.Errorf("issue a certificate for %s: %w", name, err)
	}
	return der, hex.EncodeToString(serial.Bytes()), nil
}

func serialOf(c *x509.Certificate) string { return hex.EncodeToString(c.SerialNumber.Bytes()) }

// errRefused wraps every refusal of a peer by the core's records.
var errRefused = errors.New("node TLS: refused by the core's node records")

// check runs after each handshake, on the core: a token-joined node must
// present the core CA's certificate with its current serial (or the
// previous one until it first connects with the new one) and must not be
// revoked; a cookie certificate may not speak for a token-joined node.
func (a *authority) check(name string, cert *x509.Certificate) error {
	nc, err := a.store.GetNodeCert(name)
	known := err == nil
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("node TLS: read the record of %s: %w", name, err)
	}
	fromCore := cert.CheckSignatureFrom(a.ca) == nil
	switch {
	case known && nc.Revoked:
		return fmt.Errorf("%w: %s was revoked at %s", errRefused, name, nc.RevokedAt.Format(time.RFC3339))
	case !fromCore && known:
		return fmt.Errorf("%w: %s joined with a token; a cookie certificate cannot speak for it", errRefused, name)
	case !fromCore:
		if a.mode == JoinToken {
			return fmt.Errorf("%w: %s presented a cookie certificate; this core accepts token-joined nodes only (join it with a token from 'edgefaas node token create', or run the core with --node-join any while moving)", errRefused, name)
		}
		return nil
	case !known:
		return fmt.Errorf("%w: no record of %s (its certificate was not issued by this core's records)", errRefused, name)
	}
	s := serialOf(cert)
	switch s {
	case nc.Serial:
		if nc.Previous != "" { // the rotation is complete: the old certificate is refused from now on
			_, err := a.records.UpdateNodeCert(name, func(r *storage.NodeCert, _ bool) error {
				if r.Serial == s {
					r.Previous = ""
				}
				return nil
			})
			return err
		}
		return nil
	case nc.Previous:
		return nil
	}
	return fmt.Errorf("%w: %s presented certificate %s, superseded by %s", errRefused, name, s, nc.Serial)
}

// Enroll implements cluster.NodeAuthority.
func (a *authority) Enroll(token, name string, csrDER []byte) (cluster.Enrollment, error) {
	if err := storage.CheckNodeName(name); err != nil {
		return cluster.Enrollment{}, fmt.Errorf("%w: %v", cluster.ErrJoinRefused, err)
	}
	// The token first: the route is public, and nothing costly (parsing,
	// a signature check) is done for a caller without one.
	var csr *x509.CertificateRequest
	_, err := a.records.ConsumeJoinToken(token, func(jt storage.JoinToken) error {
		if jt.Node != "" && jt.Node != name {
			return fmt.Errorf("%w: the token is for node %q, not %q", cluster.ErrJoinRefused, jt.Node, name)
		}
		if err := a.newName(name); err != nil {
			return err
		}
		var err error
		csr, err = checkJoinRequest(csrDER)
		return err
	})
	if errors.Is(err, storage.ErrTokenInvalid) {
		return cluster.Enrollment{}, fmt.Errorf("%w: %w", cluster.ErrJoinRefused, err)
	}
	if err != nil {
		return cluster.Enrollment{}, err
	}
	der, serial, err := a.issue(name, csr.PublicKey)
	if err != nil {
		return cluster.Enrollment{}, err
	}
	if _, err := a.records.UpdateNodeCert(name, func(r *storage.NodeCert, create bool) error {
		if !create { // a join with another token won the name meanwhile
			return fmt.Errorf("%w: node %s has joined meanwhile", cluster.ErrJoinRefused, name)
		}
		*r = storage.NodeCert{Name: name, Serial: serial, IssuedAt: time.Now().UTC()}
		return nil
	}); err != nil {
		return cluster.Enrollment{}, err
	}
	return cluster.Enrollment{
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		CA:          string(a.caPEM), Cookie: a.cookie, Serial: serial,
	}, nil
}

// newName refuses a join under a name a token cannot buy: the core's own
// or any with the core role (workers take commands from cores), and one
// that already has a record: a live worker's (its record would be
// replaced and the worker locked out) or a revoked one's (a revocation is
// final: the box must come back under a new name, with a new token).
func (a *authority) newName(name string) error {
	if name == a.self || trust.CoreRole(name) {
		return fmt.Errorf("%w: %s carries the core role; a worker joins as worker@HOST or another name", cluster.ErrJoinRefused, name)
	}
	nc, err := a.store.GetNodeCert(name)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("read the record of %s: %w", name, err)
	case nc.Revoked:
		return fmt.Errorf("%w: %s was revoked at %s, and a revocation is final: join under another name", cluster.ErrJoinRefused, name, nc.RevokedAt.Format(time.RFC3339))
	}
	return fmt.Errorf("%w: %s has already joined (since %s); a name is issued once: 'edgefaas node rotate' renews its certificate", cluster.ErrJoinRefused, name, nc.IssuedAt.Format(time.RFC3339))
}

// checkJoinRequest parses a joining worker's certificate request and
// checks its signature. Workers make ECDSA P-256 keys (enroll.go); any
// other key is refused before its signature is verified, so a request
// cannot make the core verify a key of the caller's choosing and size.
func checkJoinRequest(der []byte) (*x509.CertificateRequest, error) {
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%w: certificate request: %v", cluster.ErrJoinRefused, err)
	}
	if k, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%w: certificate request: the key must be ECDSA P-256, not %v", cluster.ErrJoinRefused, csr.PublicKeyAlgorithm)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: certificate request signature: %v", cluster.ErrJoinRefused, err)
	}
	return csr, nil
}

// RevokeNode implements cluster.NodeAuthority.
func (a *authority) RevokeNode(name string) error {
	if _, err := a.store.GetNodeCert(name); errors.Is(err, storage.ErrNotFound) {
		return cluster.ErrNodeUnknown
	}
	if _, err := a.records.UpdateNodeCert(name, func(r *storage.NodeCert, _ bool) error {
		r.Revoked, r.RevokedAt = true, time.Now().UTC()
		return nil
	}); err != nil {
		return err
	}
	if a.disconnect != nil {
		a.disconnect(name) // not connected: nothing to drop
	}
	return nil
}

// RotateNode implements cluster.NodeAuthority: a fresh key and certificate go
// to the node over its live (mutually authenticated, encrypted) link; the
// node keeps them in its data directory and presents them from its next
// handshake, after which the old certificate is refused.
func (a *authority) RotateNode(name string) (string, error) {
	nc, err := a.store.GetNodeCert(name)
	if errors.Is(err, storage.ErrNotFound) {
		return "", cluster.ErrNodeUnknown
	}
	if err != nil {
		return "", err
	}
	if nc.Revoked {
		return "", fmt.Errorf("%s is revoked: a revocation is final; join the box again under a new name with a new token", name)
	}
	if a.send == nil {
		return "", errors.New("the core's node is not running")
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", err
	}
	der, serial, err := a.issue(name, &k.PublicKey)
	if err != nil {
		return "", err
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return "", err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	// Record first: the old serial stays accepted (Previous) until the node
	// connects with the new one, so a lost message cannot lock it out.
	if _, err := a.records.UpdateNodeCert(name, func(r *storage.NodeCert, _ bool) error {
		if r.Previous == "" {
			r.Previous = r.Serial
		}
		r.Serial, r.IssuedAt = serial, time.Now().UTC()
		return nil
	}); err != nil {
		return "", err
	}
	if err := a.send(name, certPEM, keyPEM); err != nil {
		return "", fmt.Errorf("send the new certificate to %s (is it connected?): %w", name, err)
	}
	return serial, nil
}
