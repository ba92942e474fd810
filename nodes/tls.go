package nodes

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/ergo-services/ergo/lib"
)

// TLSFiles are operator-provided TLS material for node links.
type TLSFiles struct {
	CertFile, KeyFile string // the node's certificate and key (PEM)
	CAFile            string // CA that signs every node's certificate; enables verification
}

var tlsCache sync.Map // dataDir|files → *tls.Config

// nodeTLS returns the node's TLS configuration, for its listener and for
// the routes it dials. With a CA, both sides verify each other's
// certificate; without, links are encrypted and the cookie authenticates.
func nodeTLS(dataDir string, f TLSFiles, host string) (*tls.Config, error) {
	key := dataDir + "|" + f.CertFile + "|" + f.KeyFile + "|" + f.CAFile
	if c, ok := tlsCache.Load(key); ok {
		return c.(*tls.Config).Clone(), nil
	}
	var cert tls.Certificate
	var err error
	switch {
	case f.CertFile != "" && f.KeyFile != "":
		cert, err = tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("node certificate: %w", err)
		}
	case f.CertFile != "" || f.KeyFile != "":
		return nil, errors.New("node TLS: give both the certificate and the key")
	default:
		cert, err = selfSigned(dataDir, host)
		if err != nil {
			return nil, err
		}
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}
	if f.CAFile != "" {
		pem, err := os.ReadFile(f.CAFile)
		if err != nil {
			return nil, fmt.Errorf("node CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("node CA %s: no certificate found", f.CAFile)
		}
		// Both sides verify the peer's chain against the CA, but not its
		// host name: node addresses change (Kubernetes pod IPs, DHCP at an
		// edge site) and the CA, not DNS, says who belongs to the cluster.
		// The standard host-name check is therefore off and the chain is
		// checked here, for the dialing and the accepting side alike.
		cfg.ClientAuth = tls.RequireAnyClientCert
		cfg.InsecureSkipVerify = true
		cfg.VerifyPeerCertificate = verifyChain(pool)
	}
	tlsCache.Store(key, cfg)
	return cfg.Clone(), nil
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

// selfSigned loads dataDir/node.crt and node.key, generating them on first
// boot so a node keeps one identity across restarts.
func selfSigned(dataDir, host string) (tls.Certificate, error) {
	if dataDir == "" {
		return lib.GenerateSelfSignedCert("edgefaas", host)
	}
	certPath, keyPath := filepath.Join(dataDir, "node.crt"), filepath.Join(dataDir, "node.key")
	if c, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		return c, nil
	}
	c, err := lib.GenerateSelfSignedCert("edgefaas", host)
	if err != nil {
		return c, fmt.Errorf("generate node certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		return c, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return c, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return c, err
	}
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		return c, err
	}
	return c, nil
}
