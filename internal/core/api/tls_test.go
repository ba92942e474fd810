package api

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/core/storage"
)

func TestWantTLS(t *testing.T) {
	for _, tc := range []struct {
		mode TLSMode
		addr string
		cert bool
		want bool
	}{
		{TLSAuto, "127.0.0.1:4000", false, false},
		{TLSAuto, "127.0.0.9:0", false, false},
		{TLSAuto, "localhost:4000", false, false},
		{TLSAuto, "[::1]:4000", false, false},
		{TLSAuto, "0.0.0.0:4000", false, true}, // the README's deployment
		{TLSAuto, ":4000", false, true},
		{TLSAuto, "10.0.0.5:4000", false, true},
		{"", "[::]:4000", false, true},
		{TLSAuto, "127.0.0.1:4000", true, true}, // the operator brought a certificate
		{TLSOff, "0.0.0.0:4000", true, false},
		{TLSOn, "127.0.0.1:4000", false, true},
	} {
		if got, err := wantTLS(tc.mode, tc.addr, tc.cert); err != nil || got != tc.want {
			t.Errorf("wantTLS(%q, %q, %v) = %v, %v; want %v", tc.mode, tc.addr, tc.cert, got, err, tc.want)
		}
	}
	if _, err := wantTLS("maybe", ":1", false); err == nil {
		t.Error("an unknown mode was accepted")
	}
}

// TestServerTimeouts: the server had no read or write timeout; the write
// timeout must outlast the longest invocation (15 min + 10 s grace).
func TestServerTimeouts(t *testing.T) {
	st, err := storage.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := New(Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	longest := time.Duration(maxTimeoutMS)*time.Millisecond + 10*time.Second
	if s.srv.ReadHeaderTimeout <= 0 || s.srv.ReadTimeout <= 0 || s.srv.IdleTimeout <= 0 || s.srv.WriteTimeout <= longest {
		t.Fatalf("timeouts: header %s, read %s, write %s (must exceed %s), idle %s",
			s.srv.ReadHeaderTimeout, s.srv.ReadTimeout, s.srv.WriteTimeout, longest, s.srv.IdleTimeout)
	}
}

// startTLSCore runs RunCore with TLS on and returns its URL and fingerprint.
func startTLSCore(t *testing.T, dir string) (url, fingerprint string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan net.Addr, 1)
	fps := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- RunCore(ctx, CoreConfig{DataDir: dir, HTTPAddr: "127.0.0.1:0", TLS: TLSOn,
			ServingTLS: func(fp string) { fps <- fp },
			Listening:  func(a net.Addr) { addrs <- a }})
	}()
	select {
	case a := <-addrs:
		url = "https://" + a.String()
	case err := <-done:
		t.Fatalf("RunCore: %v", err)
	}
	select {
	case fingerprint = <-fps:
	default:
		t.Fatal("TLS on, but no fingerprint reported")
	}
	return url, fingerprint, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("RunCore: %v", err)
		}
	}
}

func healthz(c *client.Client, url string) error {
	resp, err := c.HTTP.Get(url + "/healthz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &client.Error{Status: resp.StatusCode}
	}
	return nil
}

// TestAPITLS: with TLS on and no certificate given, the core makes a
// self-signed one in its data directory, reports its fingerprint, keeps it
// across restarts; a pinned client connects, a wrong pin and plain HTTP
// do not.
func TestAPITLS(t *testing.T) {
	dir := t.TempDir()
	url, fp, stop := startTLSCore(t, dir)
	pinned, _ := client.New(url, "")
	if err := pinned.PinFingerprint(fp); err != nil {
		t.Fatal(err)
	}
	if err := healthz(pinned, url); err != nil {
		t.Fatalf("pinned client: %v", err)
	}
	wrong, _ := client.New(url, "")
	if err := wrong.PinFingerprint(strings.Repeat("ab", 32)); err != nil {
		t.Fatal(err)
	}
	if err := healthz(wrong, url); err == nil || !strings.Contains(err.Error(), "fingerprint") {
		t.Fatalf("wrong pin: %v, want a fingerprint mismatch", err)
	}
	unpinned, _ := client.New(url, "")
	if err := healthz(unpinned, url); err == nil {
		t.Fatal("a client with neither pin nor CA accepted the self-signed certificate")
	}
	ca, _ := client.New(url, "")
	if err := ca.TrustCAFile(filepath.Join(dir, APICertDir, "cert.pem")); err != nil {
		t.Fatal(err)
	}
	if err := healthz(ca, url); err != nil {
		t.Fatalf("client trusting the certificate as its CA: %v", err)
	}
	plain, _ := client.New(strings.Replace(url, "https://", "http://", 1), "")
	if err := healthz(plain, strings.Replace(url, "https://", "http://", 1)); err == nil {
		t.Fatal("plain HTTP was answered 200 by the TLS listener")
	}
	stop()
	url2, fp2, stop2 := startTLSCore(t, dir)
	defer stop2()
	if fp2 != fp {
		t.Fatalf("fingerprint changed across restarts: %s then %s", fp, fp2)
	}
	if err := healthz(pinned, url2); err != nil {
		t.Fatalf("pinned client after restart: %v", err)
	}
}
