package nodes

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"sync/atomic"
)

// nodeAuth is a node's TLS identity when a core's CA issued it (token
// join) or the core runs that CA: the certificate it presents, which can
// be swapped while the node runs (rotation), the roots peers must chain
// to, and, on a core, a check of each peer's certificate against the
// core's records (revocation, rotation).
type nodeAuth struct {
	roots *x509.CertPool
	cert  atomic.Pointer[tls.Certificate]
	// check, if set, runs after ergo's handshake with the name the peer
	// claimed and its leaf certificate (which already names that node).
	check func(name string, cert *x509.Certificate) error
	// rotate, if set (a token-joined worker), adopts a rotated certificate.
	rotate func(cert, key []byte) error
}

// tlsConfig is the configuration for the listener and every route: the
// current certificate is read at each handshake.
func (a *nodeAuth) tlsConfig() *tls.Config {
	get := func() (*tls.Certificate, error) {
		c := a.cert.Load()
		if c == nil {
			return nil, errors.New("node TLS: no certificate")
		}
		return c, nil
	}
	return &tls.Config{
		MinVersion:            tls.VersionTLS12,
		ClientAuth:            tls.RequireAnyClientCert,
		InsecureSkipVerify:    true, // the chain is verified below, the name after the handshake (see nodeTLS)
		VerifyPeerCertificate: verifyChain(a.roots),
		GetCertificate:        func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return get() },
		GetClientCertificate:  func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return get() },
	}
}
