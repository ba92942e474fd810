package core

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/core/api"
)

// startTLSCore runs Run with TLS on and returns its URL and fingerprint.
func startTLSCore(t *testing.T, dir string) (url, fingerprint string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan net.Addr, 1)
	fps := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", TLS: api.TLSOn,
			ServingTLS: func(fp string) { fps <- fp },
			Listening:  func(a net.Addr) { addrs <- a }})
	}()
	select {
	case a := <-addrs:
		url = "https://" + a.String()
	case err := <-done:
		t.Fatalf("Run: %v", err)
	}
	select {
	case fingerprint = <-fps:
	default:
		t.Fatal("TLS on, but no fingerprint reported")
	}
	return url, fingerprint, func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
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
	if err := ca.TrustCAFile(filepath.Join(dir, api.APICertDir, "cert.pem")); err != nil {
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
