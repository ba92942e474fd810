package nodes

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
)

// TLSFiles are operator-provided TLS material for node links.
type TLSFiles struct {
	CertFile, KeyFile string // the node's certificate and key (PEM)
	CAFile            string // CA that signs every node's certificate; enables verification
}

var tlsCache sync.Map // dataDir|files|name|cookie → *tls.Config

// nodeTLS returns the node's TLS configuration, for its listener and for
// the routes it dials, and whether peers are authenticated (then the
// handshake also pins node names to certificates, pinnedHandshake).
//
//   - default: a certificate for name signed by the CA derived from the
//     cookie (clusterca.go); peers must present one too;
//   - operator certificate and CA (--tls-cert/--tls-key/--tls-ca): peers
//     must present a certificate the CA signed, naming the node they claim;
//   - operator certificate without a CA: encryption only, as before issue
//     14 (the cookie is then the sole authentication; logged at start).
func nodeTLS(dataDir string, f TLSFiles, name, cookie string) (*tls.Config, bool, error) {
	sum := sha256.Sum256([]byte(cookie))
	key := dataDir + "|" + f.CertFile + "|" + f.KeyFile + "|" + f.CAFile + "|" + name + "|" + hex.EncodeToString(sum[:])
	if c, ok := tlsCache.Load(key); ok {
		cfg := c.(*tls.Config)
		return cfg.Clone(), cfg.VerifyPeerCertificate != nil, nil
	}
	var cert tls.Certificate
	var pool *x509.CertPool
	var err error
	switch {
	case f.CertFile != "" && f.KeyFile != "":
		cert, err = tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, false, fmt.Errorf("node certificate: %w", err)
		}
	case f.CertFile != "" || f.KeyFile != "":
		return nil, false, errors.New("node TLS: give both the certificate and the key")
	default:
		cert, pool, err = clusterCert(cookie, name)
		if err != nil {
			return nil, false, err
		}
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, false, fmt.Errorf("node CA: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, false, fmt.Errorf("node CA %s: no certificate found", f.CAFile)
		}
	}
	if pool != nil {
		// Both sides verify the peer's chain against the CA, but not its
		// host name: node addresses change (Kubernetes pod IPs, DHCP at an
		// edge site) and the CA, not DNS, says who belongs to the cluster.
		// The standard host-name check is therefore off and the chain is
		// checked here, for the dialing and the accepting side alike; the
		// node name is checked after ergo's handshake (pinnedHandshake).
		cfg.ClientAuth = tls.RequireAnyClientCert
		cfg.InsecureSkipVerify = true
		cfg.VerifyPeerCertificate = verifyChain(pool)
	}
	tlsCache.Store(key, cfg)
	return cfg.Clone(), pool != nil, nil
}

// verifyChain accepts a peer whose certificate chains to the CA in pool.
func verifyChain(pool *x509.CertPool) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("node TLS: the peer sent no certificate")
		}
		certs := make([]*x509.Certificate, len(raw))
		for i, r := range raw {
			c, err := x509.ParseCertificate(r)
			if err != nil {
				return fmt.Errorf("node TLS: peer certificate: %w", err)
			}
			certs[i] = c
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, err := certs[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		if err != nil {
			return fmt.Errorf("node TLS: peer certificate not signed by the cluster CA: %w", err)
		}
		return nil
	}
}
