package api

import (
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/storetest"
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
		{TLSAuto, "0.0.0.0:4000", false, true}, // a deployment listening on every address
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
	st := storetest.Open(t, t.TempDir(), nil)
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
