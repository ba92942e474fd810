package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/edgefaas/edgefaas/internal/syncfile"
)

// TLSMode says when the API serves HTTPS.
type TLSMode string

// The TLS modes. Auto is the default: bearer tokens must not cross a
// network in clear, but a core bound to loopback (make run, the tests,
// FunLess's CLI on the same machine) keeps plain HTTP.
const (
	// TLSAuto serves HTTPS unless the API listens on a loopback address.
	TLSAuto TLSMode = "auto"
	// TLSOn always serves HTTPS.
	TLSOn TLSMode = "on"
	// TLSOff always serves plain HTTP (behind a TLS-terminating proxy).
	TLSOff TLSMode = "off"
)

// APICertDir is where the self-signed API certificate is kept, under the
// core's data directory.
const APICertDir = "http-tls"

// wantTLS decides whether addr (the listen address) gets HTTPS.
func wantTLS(mode TLSMode, addr string, haveCert bool) (bool, error) {
	switch mode {
	case TLSOn:
		return true, nil
	case TLSOff:
		return false, nil
	case TLSAuto, "":
	default:
		return false, fmt.Errorf("TLS mode %q: want auto, on or off", mode)
	}
	if haveCert {
		return true, nil
	}
	return !loopbackAddr(addr), nil
}

// loopbackAddr reports whether a listen address only accepts connections
// from this machine. An empty host (":4000") or 0.0.0.0 listens everywhere.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Fingerprint is the hex SHA-256 of a certificate's DER bytes: what a
// client pins (`edgefaas --tls-fingerprint`).
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// apiTLS returns the API's TLS configuration: the operator's certificate,
// or a self-signed one made on first boot in dataDir/http-tls and kept.
func apiTLS(dataDir, certFile, keyFile, addr string) (*tls.Config, string, error) {
	var cert tls.Certificate
	var err error
	switch {
	case certFile != "" && keyFile != "":
		cert, err = tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, "", fmt.Errorf("API certificate: %w", err)
		}
	case certFile != "" || keyFile != "":
		return nil, "", errors.New("API TLS: give both the certificate and the key")
	default:
		cert, err = apiSelfSigned(filepath.Join(dataDir, APICertDir), addr)
		if err != nil {
			return nil, "", err
		}
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, Fingerprint(cert.Certificate[0]), nil
}

// apiSelfSigned loads dir/cert.pem and dir/key.pem, generating them (ECDSA
// P-256, ten years, names: this host, localhost and the listen address)
// when missing, so the fingerprint clients pinned survives restarts.
func apiSelfSigned(dir, addr string) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if c, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("API certificate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"edgefaas"}, CommonName: "edgefaas core API"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if h, err := os.Hostname(); err == nil {
		tmpl.DNSNames = append(tmpl.DNSNames, h)
	}
	if host, _, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if ip == nil && host != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, host)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("API certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("API certificate directory: %w", err)
	}
	// The key first, then the certificate: a crash in between leaves no
	// certificate, so the next boot makes a new pair.
	if err := syncfile.Write(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := syncfile.Write(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.LoadX509KeyPair(certPath, keyPath)
}

// ListenConfig says where and how the API listens.
type ListenConfig struct {
	// Addr is the listen address, e.g. 127.0.0.1:4000; port 0 picks one.
	Addr string
	// TLS says when to serve HTTPS (default TLSAuto: unless Addr is a
	// loopback address). CertFile and KeyFile are the operator's
	// certificate; without them a self-signed one is made on first boot in
	// DataDir/http-tls and kept.
	TLS               TLSMode
	CertFile, KeyFile string
	DataDir           string
}

// Listen opens the API's listener as cfg says. With HTTPS it returns the
// certificate's fingerprint (for clients to pin) and records it for join
// tokens; with plain HTTP the fingerprint is "".
func (s *Server) Listen(cfg ListenConfig) (net.Listener, string, error) {
	useTLS, err := wantTLS(cfg.TLS, cfg.Addr, cfg.CertFile != "" || cfg.KeyFile != "")
	if err != nil {
		return nil, "", err
	}
	var tlsCfg *tls.Config
	var fingerprint string
	if useTLS {
		if tlsCfg, fingerprint, err = apiTLS(cfg.DataDir, cfg.CertFile, cfg.KeyFile, cfg.Addr); err != nil {
			return nil, "", err
		}
	}
	if n := nofile(); n > 0 && n <= fdReserve {
		return nil, "", fmt.Errorf("the open files limit (RLIMIT_NOFILE) is %d: the core needs more than %d for its store and nodes before it can take a connection; raise it (systemd LimitNOFILE=, ulimit -n)", n, fdReserve)
	}
	tcp, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, "", fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	ln := net.Listener(newConnLimiter(tcp, func() int { return connBound(nofile()) }))
	if tlsCfg == nil {
		return ln, "", nil
	}
	s.SetFingerprint(fingerprint)
	return tls.NewListener(ln, tlsCfg), fingerprint, nil
}
