package cluster_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// scripted invokes mod/fn over HTTP with the APP script and returns the
// status, the body and the worker its activation record names.
func scripted(t *testing.T, ctx context.Context, core *testcluster.Core, fn, args, script string) (int, string, string) {
	t.Helper()
	body := `{"args":` + args + `,"scheduling":{"language":"app","script":"` + script + `"}}`
	req, _ := http.NewRequestWithContext(ctx, "POST", core.URL+"/v1/fn/_/"+fn, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+core.Guest)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error(), ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	id := resp.Header.Get("X-Edgefaas-Activation")
	if id == "" {
		t.Fatalf("answer %d without an activation id: %s", resp.StatusCode, b)
	}
	// The record is written in a batch shortly after the answer.
	cl := core.Client(core.Guest)
	var worker string
	wait.For(t, 30*time.Second, "activation "+id+" recorded", func() bool {
		rec, err := cl.GetActivation(context.Background(), id)
		if err != nil && !client.IsStatus(err, 404) {
			t.Fatalf("activation %s: %v", id, err)
		}
		worker = rec.Worker
		return err == nil
	})
	return resp.StatusCode, string(b), worker
}

// TestAPPScripts: a core and three workers as processes. An APP script
// routes each call to the workers its block names (checked on every
// call's activation record), and when the named worker is invalidated
// (max_concurrent_invocations with a sleep call in flight there) it
// follows its followup: fail answers 503, default hands the call to the
// platform policy, which places it on another worker.
func TestAPPScripts(t *testing.T) {
	core := testcluster.StartCore(t)
	const w2, w3, w4 = "worker@127.0.0.2", "worker@127.0.0.3", "worker@127.0.0.4"
	core.StartWorker(t, "127.0.0.2")
	core.StartWorker(t, "127.0.0.3")
	core.StartWorker(t, "127.0.0.4")
	cl := core.Client(core.Guest)
	upload(t, cl, "_", "pinned", "test/echo", &client.Metadata{Tag: "pinned"})
	upload(t, cl, "_", "paired", "test/echo", &client.Metadata{Tag: "pair"})
	upload(t, cl, "_", "other", "test/echo", &client.Metadata{Tag: "elsewhere"})
	slow := upload(t, cl, "_", "slow", "sleep", &client.Metadata{Tag: "slow"})
	upload(t, cl, "_", "spill", "sleep", &client.Metadata{Tag: "spill"})
	script := `
- pinned:
  - workers: [` + w3 + `]
- pair:
  - workers: [` + w2 + `, ` + w4 + `]
    strategy: random
- slow:
  - workers: [` + w2 + `]
    invalidate:
      max_concurrent_invocations: 1
  followup: fail
- spill:
  - workers: [` + w2 + `]
    invalidate:
      max_concurrent_invocations: 1
  followup: default
- default:
  - workers: ["nosuchworker"]
  - workers: [` + w4 + `]
`
	if _, err := cl.CreateScript(ctx(t), "site", []byte(script)); err != nil {
		t.Fatal(err)
	}

	// Routing: every call lands where its tag's block says.
	seen := map[string]int{}
	for i := range 12 {
		status, body, worker := scripted(t, ctx(t), core, "pinned", `{"i":1}`, "site")
		if status != 200 || worker != w3 {
			t.Fatalf("pinned call %d: %d %s on %q, want 200 on %s", i, status, body, worker, w3)
		}
		status, body, worker = scripted(t, ctx(t), core, "paired", `{}`, "site")
		if status != 200 || (worker != w2 && worker != w4) {
			t.Fatalf("paired call %d: %d %s on %q, want %s or %s", i, status, body, worker, w2, w4)
		}
		seen[worker]++
		// A tag the script does not name takes the default tag: its first
		// block names no connected worker, the second w4.
		status, body, worker = scripted(t, ctx(t), core, "other", `{}`, "site")
		if status != 200 || worker != w4 {
			t.Fatalf("default-tag call %d: %d %s on %q, want %s", i, status, body, worker, w4)
		}
	}
	t.Logf("random block [w2, w4]: %v over 12 calls", seen)

	// Invalidation and followup: one sleep call in flight on w2. It is
	// long enough to span the next call's placement and short enough to
	// wait for (a canceled guest blocked in its sleep ends only when the
	// sleep does, so the worker keeps counting it until then).
	hold := func(fn string) (wait func()) {
		done := make(chan int, 1)
		go func() {
			status, _, _ := scripted(t, context.Background(), core, fn, `{"ms":15000}`, "site")
			done <- status
		}()
		core.WaitWorkers(t, func(ns []client.Node) bool {
			for _, n := range ns {
				if n.Name == w2 && n.Running >= 1 {
					return true
				}
			}
			return false
		})
		return func() {
			select {
			case status := <-done:
				if status != 200 {
					t.Errorf("the held %s call answered %d", fn, status)
				}
			case <-time.After(2 * time.Minute):
				t.Fatal("the held call never answered")
			}
			core.WaitWorkers(t, func(ns []client.Node) bool {
				for _, n := range ns {
					if n.Name == w2 {
						return n.Running == 0
					}
				}
				return false
			})
		}
	}
	release := hold("slow")
	status, body, _ := scripted(t, ctx(t), core, "slow", `{"ms":1}`, "site")
	if status != 503 || !strings.Contains(body, `every block of tag \"slow\" is invalidated`) {
		t.Fatalf("followup fail: %d %s, want 503 naming the tag", status, body)
	}
	release()
	// w2 free again: the block is valid again.
	if status, body, worker := scripted(t, ctx(t), core, "slow", `{"ms":1}`, "site"); status != 200 || worker != w2 {
		t.Fatalf("after the held call ended: %d %s on %q, want 200 on %s", status, body, worker, w2)
	}

	// The platform policy prefers a worker with the code compiled: wait
	// until every worker has it, so that load decides.
	core.WaitWorkers(t, func(ns []client.Node) bool {
		return hasFunction(ns, w2, slow.Hash, true) && hasFunction(ns, w3, slow.Hash, true) && hasFunction(ns, w4, slow.Hash, true)
	})
	release = hold("spill")
	status, body, worker := scripted(t, ctx(t), core, "spill", `{"ms":1}`, "site")
	// The platform policy prefers the less loaded workers: not w2.
	if status != 200 || worker == w2 || worker == "" {
		t.Fatalf("followup default: %d %s on %q, want 200 off %s", status, body, worker, w2)
	}
	release()

	// Without the script the platform places the call as before: there
	// the tag names worker labels, and no worker carries "pinned".
	if _, err := cl.Invoke(ctx(t), "_", "pinned", nil); !client.IsStatus(err, 503) {
		t.Fatalf("tagged call without the script: %v, want 503 No worker available", err)
	}
	// The script is per call: deleting it makes calls naming it 400.
	if err := cl.DeleteScript(ctx(t), "site"); err != nil {
		t.Fatal(err)
	}
	_, err := cl.InvokeScript(ctx(t), "_", "pinned", nil, "site")
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 400 {
		t.Fatalf("deleted script: %v", err)
	}
}
