package api_test

import (
	"net/http"
	"strings"
	"testing"
)

// appScript is a valid APP script's source.
const appScript = `- t:
    - workers: [w1]
      strategy: random
  followup: default
`

// TestTenantsSeeOnlyTheirOwn: what one tenant can learn about another's
// names and the cluster. /metrics shows a user the per-function series of
// its own functions only (an admin every one; an anonymous scrape with
// --public-metrics none); a create onto a name another tenant holds is
// 404, as for something missing, never 409; GET /v1/nodes is for admins.
func TestTenantsSeeOnlyTheirOwn(t *testing.T) {
	dir := t.TempDir()
	c := startCore(t, dir, nil, "--data-dir", dir, "--http-addr", "127.0.0.1:0", "--public-metrics")
	alice, bob := c.createSubject("alice"), c.createSubject("bob")
	c.createModule(alice, "alicesecretmod")
	c.createFunction(alice, "alicesecretmod", "alicesecretfn", echoWasm, "")
	c.createFunction(alice, "_", "aliceshared", echoWasm, "")
	c.createFunction(bob, "_", "bobfn", echoWasm, "")
	// Each call ends (no worker: 503) with a record, counted per function.
	for _, call := range []struct{ token, path string }{{alice, "/v1/fn/alicesecretmod/alicesecretfn"}, {alice, "/v1/fn/_/aliceshared"}, {bob, "/v1/fn/_/bobfn"}} {
		expect(t, "invoke "+call.path, c.json("POST", call.path, call.token, `{}`), http.StatusServiceUnavailable, "No worker")
	}
	scrape := func(token string) string {
		t.Helper()
		r := c.do("GET", "/metrics", token, "", nil)
		if r.status != http.StatusOK {
			t.Fatalf("/metrics: %d %s", r.status, r.body)
		}
		return string(r.body)
	}
	series := func(module, function string) string {
		return `edgefaas_function_invocations_total{function="` + function + `",module="` + module + `",status="no_worker"} 1`
	}
	adminView, bobView, aliceView, anonView := scrape(c.admin), scrape(bob), scrape(alice), scrape("")
	for _, want := range []string{series("alicesecretmod", "alicesecretfn"), series("_", "aliceshared"), series("_", "bobfn")} {
		if !strings.Contains(adminView, want) {
			t.Errorf("the admin's /metrics lacks %s", want)
		}
	}
	if !strings.Contains(bobView, series("_", "bobfn")) || !strings.Contains(aliceView, series("alicesecretmod", "alicesecretfn")) || !strings.Contains(aliceView, series("_", "aliceshared")) {
		t.Errorf("a user's /metrics lacks its own functions' series:\nbob:\n%s\nalice:\n%s", grepLines(bobView, "edgefaas_function_"), grepLines(aliceView, "edgefaas_function_"))
	}
	for who, view := range map[string]string{"bob": bobView, "anonymous": anonView} {
		for _, name := range []string{"alicesecretmod", "alicesecretfn", "aliceshared"} {
			if strings.Contains(view, name) {
				t.Errorf("%s's /metrics names alice's %q:\n%s", who, name, grepLines(view, name))
			}
		}
	}
	if strings.Contains(aliceView, "bobfn") {
		t.Errorf("alice's /metrics names bob's function:\n%s", grepLines(aliceView, "bobfn"))
	}
	if strings.Contains(anonView, `module="`) || !strings.Contains(anonView, "edgefaas_functions 3") {
		t.Errorf("an anonymous scrape shows per-function series, or not the platform's:\n%s", grepLines(anonView, "edgefaas_function"))
	}

	// Names another tenant holds: 404, as if missing.
	expect(t, "bob creates alice's module name", c.json("POST", "/v1/fn", bob, `{"module":{"name":"alicesecretmod"}}`), http.StatusNotFound, "not available")
	expect(t, "bob creates alice's function name in _", c.upload("POST", "/v1/fn/_", bob, field{name: "name", value: "aliceshared"}, field{name: "code", value: string(echoWasm), file: true}), http.StatusNotFound, "not available")
	c.createModule(bob, "bobmod")
	expect(t, "bob renames his module to alice's", c.json("PUT", "/v1/fn/bobmod", bob, `{"module":{"name":"alicesecretmod"}}`), http.StatusNotFound, "not available")
	if r := c.upload("POST", "/v1/scripts/app", alice, field{name: "name", value: "alicescript"}, field{name: "file", value: appScript}); r.status != http.StatusCreated {
		t.Fatalf("alice creates a script: %d %s", r.status, r.body)
	}
	expect(t, "bob creates alice's script name", c.upload("POST", "/v1/scripts/app", bob, field{name: "name", value: "alicescript"}, field{name: "file", value: appScript}), http.StatusNotFound, "not available")
	// The owner's own name still conflicts.
	expect(t, "alice creates her module again", c.json("POST", "/v1/fn", alice, `{"module":{"name":"alicesecretmod"}}`), http.StatusConflict, "already exists")

	// The cluster's shape is the operator's.
	expect(t, "a user lists the nodes", c.json("GET", "/v1/nodes", bob, ""), http.StatusForbidden, "admin")
	expect(t, "an admin lists the nodes", c.json("GET", "/v1/nodes", c.admin, ""), http.StatusOK, "")

	// A deleted function's series go with it: whoever creates the name
	// next does not see its previous owner's counts.
	expect(t, "alice deletes _/aliceshared", c.json("DELETE", "/v1/fn/_/aliceshared", alice, ""), http.StatusNoContent, "")
	c.createFunction(bob, "_", "aliceshared", echoWasm, "")
	if view := scrape(bob); strings.Contains(view, series("_", "aliceshared")) {
		t.Errorf("bob's /metrics shows alice's counts for the name he re-created:\n%s", grepLines(view, "aliceshared"))
	}
	if view := scrape(c.admin); strings.Contains(view, `function="aliceshared"`) {
		t.Errorf("the admin's /metrics keeps a deleted function's series:\n%s", grepLines(view, "aliceshared"))
	}
}

// grepLines is the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
