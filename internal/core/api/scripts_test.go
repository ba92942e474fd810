package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/edgefaas/edgefaas/internal/core/cluster"
)

func scriptBody(fields ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(fields); i += 2 {
		b.WriteString("--b\r\nContent-Disposition: form-data; name=\"" + fields[i] + "\"")
		if fields[i] == "file" {
			b.WriteString("; filename=\"s.yml\"")
		}
		b.WriteString("\r\n\r\n" + fields[i+1] + "\r\n")
	}
	b.WriteString("--b--\r\n")
	return b.String()
}

const goodScript = `- t:
    - workers: [w1, w2]
      strategy: random
      invalidate:
        capacity_used: 50%
        max_concurrent_invocations: 2
  followup: default
`

// TestScriptsAPI: FunLess's create/list/show shapes, strict validation
// naming the field, ownership (private to tenants, admins' shared), delete.
func TestScriptsAPI(t *testing.T) {
	inv := &scriptedInvoker{next: func(cluster.InvokeRequest) (cluster.InvokeResult, error) {
		return cluster.InvokeResult{Output: json.RawMessage(`1`)}, nil
	}}
	ts := newTestServer(t, Config{Invoker: inv})
	mp := "multipart/form-data; boundary=b"
	status, _, body := ts.do("POST", "/v1/scripts/app", mp, strings.NewReader(scriptBody("name", "s1", "file", goodScript)))
	if status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	var created struct {
		Data struct {
			ID     int64           `json:"id"`
			Name   string          `json:"name"`
			Script json.RawMessage `json:"script"`
			Shared bool            `json:"shared"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &created); err != nil || created.Data.ID != 1 || created.Data.Name != "s1" || !created.Data.Shared {
		t.Fatalf("create answer %s (%v)", body, err)
	}
	want := `{"tags":{"t":{"blocks":[{"workers":["w1","w2"],"strategy":"random","invalidate":{"capacity_used":50,"max_concurrent_invocations":2},"affinity":{"affinity":[],"antiaffinity":[]}}],"followup":"default"}}}`
	if string(created.Data.Script) != want {
		t.Fatalf("normalised script\n got %s\nwant %s", created.Data.Script, want)
	}
	if status, _, body := ts.do("GET", "/v1/scripts/app/s1", "", nil); status != 200 || !strings.Contains(body, want) {
		t.Fatalf("show: %d %s", status, body)
	}
	if status, _, body := ts.do("GET", "/v1/scripts/app", "", nil); status != 200 || !strings.Contains(body, `"name":"s1"`) {
		t.Fatalf("list: %d %s", status, body)
	}
	if status, _, body := ts.do("GET", "/v1/scripts/app/nope", "", nil); status != 404 {
		t.Fatalf("missing: %d %s", status, body)
	}
	if status, _, body := ts.do("POST", "/v1/scripts/app", mp, strings.NewReader(scriptBody("name", "s1", "file", goodScript))); status != 409 {
		t.Fatalf("duplicate: %d %s", status, body)
	}
	for _, c := range []struct{ body, detail string }{
		{scriptBody("name", "s2", "file", strings.Replace(goodScript, "random", "fastest", 1)), `strategy (line 3): must be`},
		{scriptBody("name", "s2", "file", strings.Replace(goodScript, "50%", "150%", 1)), `invalidate.capacity_used`},
		{scriptBody("name", "s2", "file", strings.Replace(goodScript, ": 2", ": -2", 1)), `invalidate.max_concurrent_invocations`},
		{scriptBody("name", "s2", "file", strings.Replace(goodScript, "default", "retry", 1)), `followup (line 7)`},
		{scriptBody("name", "s2", "file", strings.Replace(goodScript, "strategy", "strategi", 1)), `unknown key \"strategi\"`},
		{scriptBody("name", "s2"), `\"file\"`},
		{scriptBody("file", goodScript), `\"name\"`},
		{scriptBody("name", "bad name", "file", goodScript), `script name`},
		{scriptBody("name", "s2", "file", goodScript, "extra", "x"), `unknown field \"extra\"`},
	} {
		status, _, body := ts.do("POST", "/v1/scripts/app", mp, strings.NewReader(c.body))
		if status != 400 || !strings.Contains(body, c.detail) {
			t.Errorf("bad script: %d %s, want 400 naming %s", status, body, c.detail)
		}
	}

	// Invocation with the script: the invoker receives it parsed.
	ts.create("f", minimalFunless, "--b\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{\"tag\":\"t\"}\r\n")
	ts.create("g", minimalFunless, "--b\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{\"tag\":\"other\"}\r\n")
	if status, _, body := ts.do("POST", "/v1/fn/_/f", "application/json", strings.NewReader(`{"args":{},"scheduling":{"language":"app","script":"s1"}}`)); status != 200 {
		t.Fatalf("invoke with script: %d %s", status, body)
	}
	if got := inv.got[len(inv.got)-1].Script; got == nil || got.Tags["t"].Followup != "default" {
		t.Fatalf("invoker got script %+v", got)
	}
	if status, _, body := ts.do("POST", "/v1/fn/_/f", "application/json", strings.NewReader(`{"scheduling":{"language":"none"}}`)); status != 200 || inv.got[len(inv.got)-1].Script != nil {
		t.Fatalf("language none: %d %s", status, body)
	}
	for _, c := range []struct{ path, body, detail string }{
		{"/v1/fn/_/f", `{"scheduling":{"language":"app","script":"nope"}}`, `APP script \"nope\" does not exist`},
		{"/v1/fn/_/f", `{"scheduling":{"language":"capp","script":"s1"}}`, `language \"capp\" is not supported`},
		{"/v1/fn/_/f", `{"scheduling":{"language":"app"}}`, `\"script\"`},
		{"/v1/fn/_/f", `{"scheduling":{"language":"app","script":"s1","x":1}}`, `unknown field \"x\"`},
		{"/v1/fn/_/g", `{"scheduling":{"language":"app","script":"s1"}}`, `has no tag \"other\"`},
	} {
		status, _, body := ts.do("POST", c.path, "application/json", strings.NewReader(c.body))
		if status != 400 || !strings.Contains(body, c.detail) {
			t.Errorf("invoke %s: %d %s, want 400 naming %s", c.body, status, body, c.detail)
		}
	}
	// A refusal by the script is 503 with its reason and Retry-After.
	inv.next = func(cluster.InvokeRequest) (cluster.InvokeResult, error) {
		return cluster.InvokeResult{}, &cluster.PlacementError{Message: "no valid worker: every block of tag \"t\" is invalidated"}
	}
	status, h, body := ts.do("POST", "/v1/fn/_/f", "application/json", strings.NewReader(`{"scheduling":{"language":"app","script":"s1"}}`))
	if status != 503 || h.Get("Retry-After") == "" || !strings.Contains(body, "every block of tag") {
		t.Fatalf("placement refused: %d %s", status, body)
	}

	// Ownership: a tenant's script is private; an admin's is shared but
	// only its owner or an admin deletes it.
	guest, err := ts.store.CreateSubject("tenant", false)
	if err != nil {
		t.Fatal(err)
	}
	admin := ts.token
	ts.token = guest
	if status, _, body := ts.do("POST", "/v1/scripts/app", mp, strings.NewReader(scriptBody("name", "mine", "file", goodScript))); status != 201 || !strings.Contains(body, `"shared":false`) {
		t.Fatalf("tenant create: %d %s", status, body)
	}
	if status, _, body := ts.do("GET", "/v1/scripts/app/s1", "", nil); status != 200 {
		t.Fatalf("tenant reads the admin's shared script: %d %s", status, body)
	}
	if status, _, body := ts.do("DELETE", "/v1/scripts/app/s1", "", nil); status != 403 {
		t.Fatalf("tenant deletes the admin's script: %d %s", status, body)
	}
	other, _ := ts.store.CreateSubject("other", false)
	ts.token = other
	if status, _, body := ts.do("GET", "/v1/scripts/app/mine", "", nil); status != 404 {
		t.Fatalf("another tenant reads a private script: %d %s", status, body)
	}
	if status, _, body := ts.do("GET", "/v1/scripts/app", "", nil); status != 200 || strings.Contains(body, `"mine"`) || !strings.Contains(body, `"s1"`) {
		t.Fatalf("another tenant's list: %d %s", status, body)
	}
	ts.token = admin
	if status, _, body := ts.do("GET", "/v1/scripts/app", "", nil); status != 200 || !strings.Contains(body, `"mine"`) {
		t.Fatalf("admin's list: %d %s", status, body)
	}
	if status, _, body := ts.do("DELETE", "/v1/scripts/app/mine", "", nil); status != 204 {
		t.Fatalf("admin deletes: %d %s", status, body)
	}
	if status, _, _ := ts.do("GET", "/v1/scripts/app/mine", "", nil); status != 404 {
		t.Fatal("deleted script still there")
	}
}
