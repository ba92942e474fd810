package reliability_test

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testcluster"
)

// coreMetric reads one unlabelled series from the core's /metrics (0 if absent).
func coreMetric(t *testing.T, core *testcluster.Core, name string) float64 {
	t.Helper()
	req, _ := http.NewRequest("GET", core.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+core.Admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	s := bufio.NewScanner(resp.Body)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}

// TestRefusalLogRateLimited: every 401 used to write a log line, so any
// client could write the core's log as fast as it sent requests. 500
// unauthenticated requests now write at most the burst plus the refill
// over the test's own duration; the rest are counted.
func TestRefusalLogRateLimited(t *testing.T) {
	core := testcluster.StartCore(t)
	const n = 500
	start := core.Log()
	before := strings.Count(start, `msg="request refused"`)
	for range n {
		req, _ := http.NewRequest("GET", core.URL+"/v1/fn", nil)
		req.Header.Set("Authorization", "Bearer not-a-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	}
	var logged, suppressed int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		logged = strings.Count(core.Log(), `msg="request refused"`) - before
		suppressed = int(coreMetric(t, core, "edgefaas_http_refusal_logs_suppressed_total"))
		if logged+suppressed >= n {
			break
		}
	}
	t.Logf("%d refusals: %d logged, %d suppressed", n, logged, suppressed)
	if logged+suppressed != n {
		t.Fatalf("%d logged + %d suppressed != %d refusals", logged, suppressed, n)
	}
	// Burst 10, 1 a second: 500 requests would need ~8 minutes to all be
	// logged; a fifth of them is a bound no run of this loop reaches.
	if logged > n/5 {
		t.Fatalf("%d of %d refusals logged: not rate limited", logged, n)
	}
}
