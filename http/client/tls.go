package client

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// PinFingerprint makes the client accept only a core whose certificate has
// this SHA-256 fingerprint (hex; colons and case are ignored): what a core
// with its self-signed API certificate prints at start. The certificate's
// names and issuer are not checked, the pin is.
func (c *Client) PinFingerprint(fingerprint string) error {
	want, err := hex.DecodeString(strings.ToLower(strings.ReplaceAll(strings.TrimSpace(fingerprint), ":", "")))
	if err != nil || len(want) != sha256.Size {
		return fmt.Errorf("TLS fingerprint %q: want the 64 hex digits of a SHA-256", fingerprint)
	}
	cfg, err := c.tlsConfig()
	if err != nil {
		return err
	}
	cfg.InsecureSkipVerify = true // replaced by the pin below
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("the core sent no certificate")
		}
		got := sha256.Sum256(cs.PeerCertificates[0].Raw)
		if subtle.ConstantTimeCompare(got[:], want) != 1 {
			return fmt.Errorf("the core's certificate has fingerprint %x, not the pinned %x", got[:], want)
		}
		return nil
	}
	return nil
}

// TrustCAFile makes the client verify the core's certificate against the
// CA certificates (PEM) in path instead of the system's roots.
func (c *Client) TrustCAFile(path string) error {
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return fmt.Errorf("CA file %s: no certificate found", path)
	}
	cfg, err := c.tlsConfig()
	if err != nil {
		return err
	}
	cfg.RootCAs = pool
	return nil
}

func (c *Client) tlsConfig() (*tls.Config, error) {
	tr, ok := c.HTTP.Transport.(*http.Transport)
	if !ok {
		return nil, errors.New("client TLS settings need the *http.Transport New made")
	}
	if tr.TLSClientConfig == nil {
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return tr.TLSClientConfig, nil
}
