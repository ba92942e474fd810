package cli_test

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

// fnRequests is the core's count of requests answered on /v1/fn routes
// (modules and functions), read from its /metrics counter.
func fnRequests(t *testing.T) float64 {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, core.url+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+core.admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("metrics: %d %v", resp.StatusCode, err)
	}
	var n float64
	seen := false
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, "edgefaas_http_requests_total{") || !strings.Contains(line, `route="/v1/fn`) {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metrics: %q: %v", line, err)
		}
		n, seen = n+f, true
	}
	if !seen {
		t.Fatalf("/metrics has no edgefaas_http_requests_total sample of a /v1/fn route:\n%s", body)
	}
	return n
}

// TestFnListOneRequest: `fn list` over a module of many functions asks
// the core once, and still shows each function's record.
func TestFnListOneRequest(t *testing.T) {
	const n = 6
	u := guest(t)
	hello := testmodules.Path(t, "hello")
	u.ok("mod", "create", "listing")
	for i := range n {
		u.ok("fn", "create", fmt.Sprintf("f%d", i), hello, "-m", "listing", "--no-wait")
	}

	before := fnRequests(t)
	out := u.ok("fn", "list", "-m", "listing")
	if got := fnRequests(t) - before; got != 1 {
		t.Errorf("fn list over %d functions made %v requests to the core, want 1", n, got)
	}
	rows := regexp.MustCompile(`(?m)^f\d\s+funless\s+\S+ \S+\s+1\s`).FindAllString(out, -1)
	if len(rows) != n {
		t.Errorf("fn list shows %d of %d function records:\n%s", len(rows), n, out)
	}

	var fns []struct {
		Module, Name, ABI string
		Version           int
	}
	decode(t, u.ok("fn", "list", "-m", "listing", "-o", "json"), &fns)
	if len(fns) != n || fns[0].Module != "listing" || fns[0].ABI != "funless" || fns[0].Version != 1 {
		t.Errorf("fn list -o json: %+v", fns)
	}
}
