package nodes

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

// handshake runs a TLS handshake between a listener-side and a dialer-side
// config over loopback TCP and returns both ends (or the errors).
func handshake(t *testing.T, server, client *tls.Config) (*tls.Conn, *tls.Conn, error) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type res struct {
		c   *tls.Conn
		err error
	}
	done := make(chan res, 1)
	go func() {
		raw, err := l.Accept()
		if err != nil {
			done <- res{nil, err}
			return
		}
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		sc := tls.Server(raw, server)
		err = sc.Handshake()
		if err == nil {
			// TLS 1.3 checks the client's certificate after the client's
			// side returned: a read makes the server's verdict visible.
			sc.Write([]byte{1})
		} else {
			raw.Close()
		}
		done <- res{sc, err}
	}()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	raw.SetDeadline(time.Now().Add(10 * time.Second))
	cc := tls.Client(raw, client)
	cerr := cc.Handshake()
	if cerr == nil {
		_, cerr = cc.Read(make([]byte, 1))
	}
	if cerr != nil {
		raw.Close()
	}
	s := <-done
	if cerr != nil || s.err != nil {
		return nil, nil, errors.Join(cerr, s.err)
	}
	t.Cleanup(func() { cc.Close(); s.c.Close() })
	return s.c, cc, nil
}

// TestClusterCAFromCookie: without an operator CA, node TLS used to skip
// every verification (a man in the middle could terminate both sides).
// Now a certificate signed by the cookie's CA is required on both sides,
// and it names the node.
func TestClusterCAFromCookie(t *testing.T) {
	core, pinned, err := nodeTLS("", TLSFiles{}, "core@127.0.0.1", "cookie-1")
	if err != nil || !pinned {
		t.Fatalf("core TLS: pinned %v, %v", pinned, err)
	}
	worker, _, err := nodeTLS("", TLSFiles{}, "worker@127.0.0.2", "cookie-1")
	if err != nil {
		t.Fatal(err)
	}
	stranger, _, err := nodeTLS("", TLSFiles{}, "worker@127.0.0.2", "another-cookie")
	if err != nil {
		t.Fatal(err)
	}
	// The derived CA is the same on every node with the cookie.
	ca1, _, _ := clusterCA("cookie-1")
	ca2, _, _ := clusterCA("cookie-1")
	ca3, _, _ := clusterCA("another-cookie")
	if !bytes.Equal(ca1.RawSubjectPublicKeyInfo, ca2.RawSubjectPublicKeyInfo) || bytes.Equal(ca1.RawSubjectPublicKeyInfo, ca3.RawSubjectPublicKeyInfo) {
		t.Fatal("the cluster CA is not a function of the cookie")
	}

	sc, cc, err := handshake(t, core, worker)
	if err != nil {
		t.Fatalf("same cookie: %v", err)
	}
	if err := checkPeerName(sc, "worker@127.0.0.2", nil); err != nil {
		t.Fatalf("core sees the worker: %v", err)
	}
	if err := checkPeerName(cc, "core@127.0.0.1", nil); err != nil {
		t.Fatalf("worker sees the core: %v", err)
	}
	if err := checkPeerName(sc, "worker@127.0.0.3", nil); !errors.Is(err, errPeerName) {
		t.Fatalf("a certificate for worker@127.0.0.2 claimed as worker@127.0.0.3: %v", err)
	}
	// Without the cookie: refused in both directions.
	if _, _, err := handshake(t, core, stranger); err == nil {
		t.Fatal("the core accepted a peer whose certificate another cookie's CA signed")
	}
	if _, _, err := handshake(t, stranger, worker); err == nil {
		t.Fatal("the worker accepted a server whose certificate another cookie's CA signed")
	}
	// A man in the middle with any self-made certificate: refused.
	mitm := &tls.Config{Certificates: stranger.Certificates, InsecureSkipVerify: true}
	if _, _, err := handshake(t, mitm, worker); err == nil || !strings.Contains(err.Error(), "cluster CA") {
		t.Fatalf("worker dialing a MITM: %v", err)
	}
}

// TestOperatorCertNames: with an operator CA, a certificate speaks for a
// node by URI SAN, common name, or the host part of the node's name.
func TestOperatorCertNames(t *testing.T) {
	c := &x509.Certificate{IPAddresses: []net.IP{net.ParseIP("127.0.0.5")}, DNSNames: []string{"edge-7.example"}}
	c.Subject.CommonName = "w5"
	for name, want := range map[string]bool{
		"worker@127.0.0.5":      true,
		"worker@edge-7.example": true,
		"w5":                    true,
		"worker@127.0.0.6":      false,
		"core@edge-8.example":   false,
		"worker":                false,
	} {
		if got := certNames(c, name); got != want {
			t.Errorf("certNames(%q) = %v, want %v", name, got, want)
		}
	}
}
