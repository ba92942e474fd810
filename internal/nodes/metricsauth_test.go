package nodes

import (
	"net/http"
	"testing"
)

// TestWorkerMetricsAuth: the worker's metrics listener answered anyone,
// with no server timeouts; now it wants its bearer token, like the core's.
func TestWorkerMetricsAuth(t *testing.T) {
	dir := t.TempDir()
	token, created, err := LoadOrCreateMetricsToken(dir)
	if err != nil || !created || len(token) < 40 {
		t.Fatalf("token %q created %v: %v", token, created, err)
	}
	again, created, err := LoadOrCreateMetricsToken(dir)
	if err != nil || created || again != token {
		t.Fatalf("second load: %q created %v: %v", again, created, err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("edgefaas_worker_running 0\n")) })
	addr, err := serveMetrics("127.0.0.1:0", ok, MetricsOptions{Token: token})
	if err != nil {
		t.Fatal(err)
	}
	get := func(auth string) int {
		req, _ := http.NewRequest("GET", "http://"+addr.String()+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, auth := range []string{"", "Bearer ", "Bearer wrong", "Basic " + token, token} {
		if st := get(auth); st != http.StatusUnauthorized {
			t.Errorf("Authorization %q: %d, want 401", auth, st)
		}
	}
	if st := get("Bearer " + token); st != http.StatusOK {
		t.Fatalf("with the token: %d", st)
	}
	srv := metricsServer(ok, MetricsOptions{})
	if srv.ReadHeaderTimeout <= 0 || srv.ReadTimeout <= 0 || srv.WriteTimeout <= 0 || srv.IdleTimeout <= 0 {
		t.Fatalf("timeouts: %+v", srv)
	}
}
