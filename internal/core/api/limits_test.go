package api

import (
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// TestRequestHeadersBounded: the API server reads at most maxHeaderBytes
// of a request's headers, on every route including the public ones,
// before anything authenticates the caller; a larger header is refused
// 431 and never held whole.
func TestRequestHeadersBounded(t *testing.T) {
	st, err := storage.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	s, err := New(Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.srv.Close() })
	get := func(header int) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "http://"+ln.Addr().String()+"/healthz", nil)
		req.Header.Set("X-Padding", strings.Repeat("x", header))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%d header bytes: %v", header, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(1 << 10); got != http.StatusOK {
		t.Fatalf("health with a 1 KiB header: %d, want 200", got)
	}
	if got := get(maxHeaderBytes + 8<<10); got != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("health with a header past the bound: %d, want 431", got)
	}
}
