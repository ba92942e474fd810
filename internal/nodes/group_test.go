package nodes

import (
	"crypto/x509"
	"testing"
)

// TestGroupTLSRefusesNodeCertificates: the group's check accepts a
// member's certificate and refuses a node's of the same cookie's CA (a
// worker's), and the configuration verifies chains against that CA.
func TestGroupTLSRefusesNodeCertificates(t *testing.T) {
	const cookie = "9c1f0b7e3d5a4c2e8f6a1b0d9e7c5a3f1e2d4c6b8a0f9e7d5c3b1a2f4e6d8c0b"
	cfg, check, err := GroupTLS(cookie, "10.0.0.1:4002")
	if err != nil {
		t.Fatal(err)
	}
	own, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := check(own); err != nil {
		t.Errorf("a member's certificate refused: %v", err)
	}
	worker, _, err := clusterCert(cookie, "worker@10.0.0.7")
	if err != nil {
		t.Fatal(err)
	}
	wc, err := x509.ParseCertificate(worker.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := check(wc); err == nil {
		t.Error("a worker's certificate of the same CA was accepted")
	}
	if err := cfg.VerifyPeerCertificate(worker.Certificate, nil); err != nil {
		t.Errorf("the chain of the same CA: %v", err)
	}
	other, _, err := clusterCert("0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9", "group:10.0.0.9:4002")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.VerifyPeerCertificate(other.Certificate, nil); err == nil {
		t.Error("a certificate of another cookie's CA was verified")
	}
	if _, _, err := GroupTLS("short", "10.0.0.1:4002"); err == nil {
		t.Error("a bad cookie was accepted")
	}
}
