package nodes

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/ergo-services/ergo/lib"
	"github.com/ergo-services/ergo/node"
)

// The cluster CA without operator work (docs/RATIONALE.md#why-the-node-ca-join-tokens-and-egress-bounds). Node links used to be
// encrypted but not authenticated unless the operator brought a CA: a
// man-in-the-middle could terminate TLS on both sides and relay ergo's
// cookie challenge, which is not bound to the TLS channel. Now every node
// derives the same CA key from the cookie it already has (HKDF-SHA256 →
// Ed25519 seed) and signs its own certificate with it, naming itself in a
// URI SAN edgefaas-node://NAME. Both sides verify the peer's chain against
// that CA and, after ergo's handshake, that the certificate names the node
// the peer claimed to be. Who lacks the cookie cannot obtain a certificate,
// so cannot stand in the middle; who has it could already join.

// clusterCA derives the cookie's CA: the same certificate and key on every
// node holding the cookie (Ed25519 signatures are deterministic).
func clusterCA(cookie string) (*x509.Certificate, ed25519.PrivateKey, error) {
	seed, err := hkdf.Key(sha256.New, []byte(cookie), []byte("edgefaas"), "edgefaas node CA v1", ed25519.SeedSize)
	if err != nil {
		return nil, nil, fmt.Errorf("derive the cluster CA: %w", err)
	}
	key := ed25519.NewKeyFromSeed(seed)
	pub := key.Public().(ed25519.PublicKey)
	id := sha256.Sum256(pub)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Organization: []string{"edgefaas"}, CommonName: "edgefaas cluster CA " + hex.EncodeToString(id[:8])},
		NotBefore:             time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2124, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
		SubjectKeyId:          id[:20],
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(der)
	return ca, key, err
}

// nodeURI is the URI SAN that names a node in its certificate.
func nodeURI(name string) *url.URL { return &url.URL{Scheme: "edgefaas-node", Opaque: name} }

// clusterCert makes this node's certificate, signed by the cookie's CA:
// a fresh key each start (nothing to keep on disk), named name.
func clusterCert(cookie, name string) (tls.Certificate, *x509.CertPool, error) {
	ca, caKey, err := clusterCA(cookie)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return tls.Certificate{}, nil, err
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
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("node certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool, nil
}

// certNames reports whether cert may speak for node name: its URI SAN
// edgefaas-node://NAME, or (an operator's certificate) its common name
// equal to NAME, or the host part of NAME among its DNS and IP names.
func certNames(cert *x509.Certificate, name string) bool {
	for _, u := range cert.URIs {
		if u.Scheme == "edgefaas-node" && u.Opaque == name {
			return true
		}
	}
	if cert.Subject.CommonName == name {
		return true
	}
	_, host, ok := strings.Cut(name, "@")
	if !ok || host == "" {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		for _, a := range cert.IPAddresses {
			if a.Equal(ip) {
				return true
			}
		}
		return false
	}
	for _, d := range cert.DNSNames {
		if strings.EqualFold(d, host) {
			return true
		}
	}
	return false
}

// errPeerName is a peer whose certificate does not name the node it
// introduced itself as in ergo's handshake.
var errPeerName = errors.New("node TLS: the peer's certificate does not name the node it claims to be")

// checkPeerName verifies, after ergo's handshake, that the TLS peer's
// certificate names the node the handshake says it is, then runs check
// (the core's records) if set.
func checkPeerName(conn lib.NetReadWriter, name string, check func(string, *x509.Certificate) error) error {
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return errors.New("node TLS: the link is not TLS")
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return errors.New("node TLS: the peer sent no certificate")
	}
	if !certNames(certs[0], name) {
		return fmt.Errorf("%w: %q (certificate for %q)", errPeerName, name, certs[0].Subject.CommonName)
	}
	if check != nil {
		return check(name, certs[0])
	}
	return nil
}

// pinnedHandshake is ergo's handshake followed by checkPeerName, on the
// dialing and the accepting side.
type pinnedHandshake struct {
	node.HandshakeInterface
	check func(name string, cert *x509.Certificate) error
	log   func(name string, err error)
}

func (h pinnedHandshake) Start(remote net.Addr, conn lib.NetReadWriter, tlsOn bool, cookie string) (node.HandshakeDetails, error) {
	d, err := h.HandshakeInterface.Start(remote, conn, tlsOn, cookie)
	if err == nil {
		err = checkPeerName(conn, d.Name, h.check)
		h.refused(d.Name, err)
	}
	return d, err
}

func (h pinnedHandshake) Accept(remote net.Addr, conn lib.NetReadWriter, tlsOn bool, cookie string) (node.HandshakeDetails, error) {
	d, err := h.HandshakeInterface.Accept(remote, conn, tlsOn, cookie)
	if err == nil {
		err = checkPeerName(conn, d.Name, h.check)
		h.refused(d.Name, err)
	}
	return d, err
}

func (h pinnedHandshake) refused(name string, err error) {
	if err != nil && h.log != nil {
		h.log(name, err)
	}
}
