package reliability_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/core/api"
	"github.com/edgefaas/edgefaas/internal/testing/storetest"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// route is one API route with a concrete path.
type route struct {
	method, path string
	admin        bool // needs an admin token
	owned        bool // names a resource of subject alice
}

// authRoutes is every authenticated route the API registers (derived from
// its router, so a new route cannot escape this test), with concrete paths:
// :mod is alice's module, :fn her function, :name a subject, any other
// parameter "x".
func authRoutes(t *testing.T) []route {
	t.Helper()
	store := storetest.Open(t, filepath.Join(t.TempDir(), "db"), nil)
	srv, err := api.New(api.Config{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	var out []route
	for _, r := range srv.Routes() {
		if r.Access == "public" {
			continue
		}
		var parts []string
		owned := false
		for _, seg := range strings.Split(r.Path, "/") {
			switch {
			case seg == ":mod":
				seg, owned = "alicemod", true
			case seg == ":fn":
				seg = "echo"
			case seg == ":name":
				seg = "alice"
			case strings.HasPrefix(seg, ":") || strings.HasPrefix(seg, "*"):
				seg = "x"
			}
			parts = append(parts, seg)
		}
		out = append(out, route{r.Method, strings.Join(parts, "/"), r.Access == "admin", owned})
	}
	if len(out) < 17 {
		t.Fatalf("only %d authenticated routes found in the router", len(out))
	}
	return out
}

// TestAuthEveryRoute sends every authenticated route without a token,
// with a malformed header, a wrong token, a revoked token and a rotated
// one (401), admin routes with a user token (403), and alice's resources
// with bob's token (404, as if missing): all refused, nothing changed,
// and each 401/403 logged by the core.
func TestAuthEveryRoute(t *testing.T) {
	core := testcluster.StartCore(t)
	adm := core.Client(core.Admin)
	alice, err := adm.CreateSubject(ctxT(t), "alice")
	if err != nil {
		t.Fatal(err)
	}
	bob, _ := adm.CreateSubject(ctxT(t), "bob")
	gone, _ := adm.CreateSubject(ctxT(t), "gone")
	if err := adm.RevokeSubject(ctxT(t), "gone"); err != nil {
		t.Fatal(err)
	}
	rot, _ := adm.CreateSubject(ctxT(t), "rot")
	if _, err := adm.RotateSubject(ctxT(t), "rot"); err != nil {
		t.Fatal(err)
	}
	ac := core.Client(alice.Token)
	if err := ac.CreateModule(ctxT(t), "alicemod"); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.CreateFunction(ctxT(t), "alicemod", client.Upload{Name: "echo", Code: testmodules.Read(t, "test/echo")}); err != nil {
		t.Fatal(err)
	}
	send := func(r route, auth string) (int, string) {
		req, _ := http.NewRequest(r.method, core.URL+r.path, strings.NewReader(`{"module":{"name":"x"},"subject":{"name":"x"}}`))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, r.path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	bad := map[string]string{
		"no token":      "",
		"malformed":     "Token abc",
		"empty bearer":  "Bearer ",
		"wrong token":   "Bearer " + strings.Repeat("A", 43),
		"revoked token": "Bearer " + gone.Token,
		"rotated token": "Bearer " + rot.Token,
	}
	refused, logged := 0, 0
	routes := authRoutes(t)
	for _, r := range routes {
		for what, h := range bad {
			if st, body := send(r, h); st != 401 {
				t.Errorf("%s %s with %s: %d %s", r.method, r.path, what, st, body)
			}
			refused++
		}
		if r.admin {
			if st, body := send(r, "Bearer "+bob.Token); st != 403 {
				t.Errorf("%s %s with a user token: %d %s", r.method, r.path, st, body)
			}
			refused++
		}
		if r.owned {
			if st, body := send(r, "Bearer "+bob.Token); st != 404 {
				t.Errorf("%s %s with another subject's token: %d %s", r.method, r.path, st, body)
			}
		}
	}
	// Nothing changed: alice's function still answers her.
	if out, err := ac.Invoke(ctxT(t), "alicemod", "echo", []byte(`{"a":1}`)); err != nil && !client.IsStatus(err, 503) {
		t.Fatalf("alice's function after the attack: %s %v", out, err)
	}
	if _, err := ac.GetFunction(ctxT(t), "alicemod", "echo"); err != nil {
		t.Fatalf("alice's function was changed: %v", err)
	}
	// Every refusal is in the core's log or counted as left out by the
	// log's rate limit (anyone can cause these lines).
	suppressed := 0
	wait.Until(context.Background(), 10*time.Second, "every refusal logged or counted", func() bool {
		logged = strings.Count(core.Log(), `msg="request refused"`)
		suppressed = int(core.Metric(t, "edgefaas_http_refusal_logs_suppressed_total"))
		return logged+suppressed >= refused
	})
	if logged+suppressed != refused {
		t.Fatalf("%d refusals, %d logged, %d suppressed", refused, logged, suppressed)
	}
	if strings.Contains(core.Log(), bob.Token) || strings.Contains(core.Log(), gone.Token) {
		t.Fatal("a token was logged")
	}
	record(row{Test: "auth: every route × bad tokens", Sent: refused, Answered: refused, FailedFast: refused,
		Note: fmt.Sprintf("%d routes; %d requests refused 401/403, each logged or counted (rate limit); other subject's resources 404", len(routes), refused)})
}
