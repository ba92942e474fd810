package api

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/edgefaas/edgefaas/internal/testing/diskfill"
)

// TestRefusalPace: a subject's first refusal is answered at once, one
// within refusalHold of its last waits refusalHold, another subject's
// first is not held by it, and a subject refused again only after
// refusalHold is answered at once again.
func TestRefusalPace(t *testing.T) {
	var p refusalPace
	t0 := time.Unix(1000, 0)
	steps := []struct {
		who  string
		at   time.Duration
		want time.Duration
	}{
		{"flooder", 0, 0},
		{"flooder", 10 * time.Millisecond, refusalHold},
		{"neighbour", 20 * time.Millisecond, 0},
		{"flooder", 500 * time.Millisecond, refusalHold},
		{"flooder", 500*time.Millisecond + refusalHold, 0},
		{"neighbour", 3 * refusalHold, 0},
	}
	for i, s := range steps {
		if got := p.due(s.who, t0.Add(s.at)); got != s.want {
			t.Errorf("step %d: %s refused at +%s waits %s, want %s", i, s.who, s.at, got, s.want)
		}
	}
	if len(p.last) != 1 {
		t.Errorf("%d subjects remembered after the others' refusals are a refusalHold old, want 1 (the last refused)", len(p.last))
	}
}

// TestStrangersHeldBeyondTheRate: requests with no valid credential share
// one bucket whatever token they try; beyond its rate each refusal is
// held (edgefaas_http_unauthenticated_refusals_held_total), and a tenant
// with a valid token is not held by them. With a burst of one: the first
// wrong token is answered at once, the second held.
func TestStrangersHeldBeyondTheRate(t *testing.T) {
	ts := newTestServer(t, Config{})
	s, token := ts.server, ts.token
	s.strangers.rate, s.strangers.burst, s.strangers.tokens = 0, 1, 1
	get := func(path, token string) int {
		req, _ := http.NewRequest(http.MethodGet, ts.url+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		return resp.StatusCode
	}
	for i, wrong := range []string{"not-a-token", "another-wrong-one"} {
		if status := get("/v1/fn", wrong); status != http.StatusUnauthorized {
			t.Fatalf("request %d with a wrong token: %d", i, status)
		}
	}
	if status := get("/v1/fn", token); status != http.StatusOK {
		t.Fatalf("the tenant's own request: %d", status)
	}
	var m dto.Metric
	if err := s.strangers.counter.Write(&m); err != nil {
		t.Fatal(err)
	}
	if held := m.GetCounter().GetValue(); held != 1 {
		t.Errorf("%v refusals held; want 1 (the second wrong token; not the first, nor the tenant's request)", held)
	}
}

// TestDiskFullRefusalsPaced: on a full disk (a tmpfs the test fills) a
// subject's upload is refused 507 at once, and one that follows within
// refusalHold is held first (edgefaas_http_refusals_held_total with
// reason "disk_full"): a tenant that uploads in a loop is answered at
// most once a refusalHold per connection, not as fast as the core can
// refuse.
func TestDiskFullRefusalsPaced(t *testing.T) {
	disk, err := diskfill.Tmpfs(t, 16<<20)
	if err != nil {
		t.Skipf("a small file system: %v", err)
	}
	ts := newTestServerIn(t, filepath.Join(disk, "db"), Config{})
	diskfill.FillTo(t, filepath.Join(disk, "filler"), disk, 0)
	body := "--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nf\r\n--b\r\nContent-Disposition: form-data; name=\"code\"; filename=\"f.wasm\"\r\n\r\n" + strings.Repeat("x", 64<<10) + "\r\n--b--\r\n"
	for i := range 2 {
		if status, _, _ := ts.do(http.MethodPost, "/v1/fn/_", "multipart/form-data; boundary=b", strings.NewReader(body)); status != http.StatusInsufficientStorage {
			t.Fatalf("upload %d on a full disk: %d, want 507", i, status)
		}
	}
	var m dto.Metric
	if err := ts.server.refusalsHeld.WithLabelValues("disk_full").Write(&m); err != nil {
		t.Fatal(err)
	}
	if held := m.GetCounter().GetValue(); held != 1 {
		t.Errorf("%v refusals held; want 1 (the second upload, not the first)", held)
	}
}
