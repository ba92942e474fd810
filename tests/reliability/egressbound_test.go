package reliability_test

import (
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

// TestSubjectEgressBound (per-subject egress, docs/RATIONALE.md#why-the-node-ca-join-tokens-and-egress-bounds): the worker lets
// functions grant themselves anything (--egress-allow '*') and opens the
// host X on 127.0.0.2; the operator permits X to subject alice only. Both
// upload the same function with allowed_hosts ["*"]: alice's reaches X,
// bob's is refused, and the server counts only alice's hits. Changing the
// bounds (API and CLI) takes effect at the next call, without a restart.
func TestSubjectEgressBound(t *testing.T) {
	var hits atomic.Int64
	x := listen(t, "127.0.0.2:0", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1); w.Write([]byte("ok")) }))

	core := testcluster.StartCore(t)
	core.StartWorker(t, "127.0.0.2", "--allow-net", "127.0.0.2/32", "--egress-allow", "*")
	adm := core.Client(core.Admin)
	tokens := map[string]string{}
	for _, name := range []string{"alice", "bob"} {
		cr, err := adm.CreateSubject(ctxT(t), name)
		if err != nil {
			t.Fatal(err)
		}
		tokens[name] = cr.Token
		cl := core.Client(cr.Token)
		if err := cl.CreateModule(ctxT(t), name); err != nil {
			t.Fatal(err)
		}
		if _, err := cl.CreateFunction(ctxT(t), name, client.Upload{Name: "net", Code: testmodules.Read(t, "network"),
			Metadata: &client.Metadata{AllowedHosts: []string{"*"}}}); err != nil {
			t.Fatal(err)
		}
	}
	args := fmt.Sprintf(`{"url":%q,"count":1}`, "http://"+x+"/")
	reach := func(who string) outcome { return call(core.Client(tokens[who]), who, "net", args, time.Minute, 0) }
	cli := func(a ...string) string {
		out, err := exec.Command(testcluster.Binary(t), append(a, "--host", core.URL, "--token", core.Admin)...).CombinedOutput()
		if err != nil {
			t.Fatalf("edgefaas %s: %v\n%s", strings.Join(a, " "), err, out)
		}
		return string(out)
	}
	expect := func(step, who string, want int) {
		t.Helper()
		before := hits.Load()
		o := reach(who)
		got := hits.Load() - before
		switch {
		case want == 200 && (o.status != 200 || got != 1):
			t.Fatalf("%s: %s: %d %q, server hits %d; want 200 and 1 hit", step, who, o.status, o.detail, got)
		case want != 200 && (o.status != want || !strings.Contains(o.detail, "host not allowed") || got != 0):
			t.Fatalf("%s: %s: %d %q, server hits %d; want %d host not allowed and no hit", step, who, o.status, o.detail, got, want)
		}
		t.Logf("%-28s %-5s %d %s", step, who, o.status, trim(o.detail, 90))
	}

	// No bound yet: the node-wide --egress-allow '*' lets both through.
	expect("no bounds", "alice", 200)
	expect("no bounds", "bob", 200)

	if _, err := adm.SetSubjectEgress(ctxT(t), "alice", []string{x}); err != nil {
		t.Fatal(err)
	}
	if out := cli("admin", "subject", "egress", "set", "bob", "other.example:443"); !strings.Contains(out, "other.example:443") {
		t.Fatalf("CLI set printed %q", out)
	}
	expect("alice bound to X", "alice", 200)
	expect("bob bound elsewhere", "bob", 422)

	// Live changes: bob gets X, alice loses everything, then is unbounded.
	cli("admin", "subject", "egress", "set", "bob", "127.0.0.2:"+strings.Split(x, ":")[1])
	expect("bob granted X", "bob", 200)
	if _, err := adm.SetSubjectEgress(ctxT(t), "alice", nil); err != nil {
		t.Fatal(err)
	}
	if out := cli("admin", "subject", "egress", "show", "alice"); !strings.Contains(out, "nothing permitted") {
		t.Fatalf("CLI show printed %q", out)
	}
	expect("alice bound to nothing", "alice", 422)
	cli("admin", "subject", "egress", "clear", "alice")
	expect("alice bound cleared", "alice", 200)

	// Only admins set bounds; a subject cannot lift its own.
	_, err := core.Client(tokens["bob"]).SetSubjectEgress(ctxT(t), "bob", []string{"*"})
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusForbidden {
		t.Fatalf("bob set his own bound: %v", err)
	}
}
