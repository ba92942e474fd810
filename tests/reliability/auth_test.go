package reliability_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testcluster"
	"github.com/edgefaas/edgefaas/internal/testmodules"
)

// route is one API route with a concrete path.
type route struct {
	method, path string
	admin        bool // needs an admin token
	owned        bool // names a resource of subject alice
}

var routes = []route{
	{"GET", "/v1/admin/subjects", true, false},
	{"POST", "/v1/admin/subjects", true, false},
	{"PUT", "/v1/admin/subjects/alice", true, false},
	{"DELETE", "/v1/admin/subjects/alice", true, false},
	{"GET", "/v1/nodes", false, false},
	{"POST", "/v1/nodes", true, false},
	{"GET", "/v1/fn", false, false},
	{"POST", "/v1/fn", false, false},
	{"GET", "/v1/fn/alicemod", false, true},
	{"PUT", "/v1/fn/alicemod", false, true},
	{"DELETE", "/v1/fn/alicemod", false, true},
	{"POST", "/v1/fn/alicemod", false, true},
	{"GET", "/v1/fn/alicemod/echo", false, true},
	{"PUT", "/v1/fn/alicemod/echo", false, true},
	{"DELETE", "/v1/fn/alicemod/echo", false, true},
	{"POST", "/v1/fn/alicemod/echo", false, true},
	{"GET", "/v1/activations", false, false},
	{"GET", "/v1/activations/01M8RBJM0V1JB8WZM4X7357AW2", false, true},
	{"GET", "/metrics", false, false},
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
	// Every refusal is in the core's log.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		logged = strings.Count(core.Log(), `msg="request refused"`)
		if logged >= refused {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if logged < refused {
		t.Fatalf("%d refusals, %d logged", refused, logged)
	}
	if strings.Contains(core.Log(), bob.Token) || strings.Contains(core.Log(), gone.Token) {
		t.Fatal("a token was logged")
	}
	record(row{Test: "auth: every route × bad tokens", Sent: refused, Answered: refused, FailedFast: refused,
		Note: fmt.Sprintf("%d routes; %d requests refused 401/403, all logged; other subject's resources 404", len(routes), refused)})
}
