// Package activations_test runs the real edgefaas binary (a core and two
// workers as separate processes) and checks activation records and
// asynchronous invocation end to end: logs in records, the activation
// header, a thousand async calls, kill -9 of the core and of a worker,
// retention, and ownership.
package activations_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

func ctxT(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func upload(t *testing.T, cl *client.Client, mod, name, module string, md *client.Metadata) {
	t.Helper()
	if _, err := cl.CreateFunction(ctxT(t), mod, client.Upload{Name: name, Code: testmodules.Read(t, module), Metadata: md}); err != nil {
		t.Fatalf("upload %s: %v", name, err)
	}
}

// cluster starts a core (with extra flags) and two workers.
func cluster(t *testing.T, extra ...string) *testcluster.Core {
	core := testcluster.StartCore(t, extra...)
	core.StartWorker(t, "127.0.0.2")
	core.StartWorker(t, "127.0.0.3")
	return core
}

// post invokes synchronously with net/http, to see the headers.
func post(t *testing.T, core *testcluster.Core, token, path, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, core.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp, b.String()
}

// waitFinal polls a record until it is final (bounded).
func waitFinal(t *testing.T, cl *client.Client, id string, limit time.Duration) client.Activation {
	t.Helper()
	var a client.Activation
	var err error
	wait.ForState(t, limit, "activation "+id+" final", func() (bool, string) {
		a, err = cl.GetActivation(ctxT(t), id)
		return err == nil && a.Final(), fmt.Sprintf("%+v, %v", a, err)
	})
	return a
}

// all lists every record of a function, paging with before.
func all(t *testing.T, cl *client.Client, mod, fn string) []client.Activation {
	t.Helper()
	var out []client.Activation
	before := ""
	for range 1000 {
		page, err := cl.ListActivations(ctxT(t), client.ActivationFilter{Module: mod, Function: fn, Limit: 1000, Before: before})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page...)
		if len(page) < 1000 {
			return out
		}
		before = page[len(page)-1].ID
	}
	t.Fatal("too many pages")
	return nil
}

// TestRecordsLogsHeaderOwnership: every synchronous answer carries
// X-Edgefaas-Activation; the record has the outcome and the function's log
// lines (cut with the marker at the log limit); another subject gets 404.
func TestRecordsLogsHeaderOwnership(t *testing.T) {
	core := cluster(t)
	guest := core.Client(core.Guest)
	upload(t, guest, "_", "echo", "test/echo", nil)
	upload(t, guest, "_", "flood", "test/logflood", nil)
	upload(t, guest, "_", "fail", "test/fail", nil)
	upload(t, guest, "_", "trap", "test/trap", nil)

	cases := []struct {
		fn, status string
		code       int
	}{
		{"echo", "success", 200}, {"flood", "success", 200}, {"fail", "function_error", 422}, {"trap", "runtime_error", 500},
	}
	ids := map[string]string{}
	for _, tc := range cases {
		resp, body := post(t, core, core.Guest, "/v1/fn/_/"+tc.fn, `{"args":{"name":"edge"}}`)
		if resp.StatusCode != tc.code {
			t.Fatalf("%s: %d %s", tc.fn, resp.StatusCode, body)
		}
		id := resp.Header.Get("X-Edgefaas-Activation")
		if id == "" {
			t.Fatalf("%s: no X-Edgefaas-Activation header on %d", tc.fn, resp.StatusCode)
		}
		if tc.fn == "echo" && body != `{"data":{"name":"edge"}}`+"\n" {
			t.Fatalf("echo body changed: %q", body)
		}
		ids[tc.fn] = id
		a := waitFinal(t, guest, id, 30*time.Second)
		if a.Status != tc.status || a.Module != "_" || a.Function != tc.fn || a.Subject != "guest" || a.Worker == "" || a.Hash == "" || a.Version != 1 || a.StartedAt == nil {
			t.Fatalf("%s: record %+v", tc.fn, a)
		}
		if tc.status != "success" && a.Error == "" {
			t.Fatalf("%s: no error text in %+v", tc.fn, a)
		}
	}
	echo, _ := guest.GetActivation(ctxT(t), ids["echo"])
	if string(echo.Result) != `{"name":"edge"}` || !slices.Contains(echo.Logs, "echoing") {
		t.Fatalf("echo record: result %s logs %q", echo.Result, echo.Logs)
	}
	flood, _ := guest.GetActivation(ctxT(t), ids["flood"])
	n := 0
	for _, l := range flood.Logs {
		n += len(l)
	}
	if !flood.LogsTruncated || flood.Logs[len(flood.Logs)-1] != "[edgefaas: log truncated]" ||
		flood.Logs[0] != "flooding the log with a line of text" || n > 64<<10+64 {
		t.Fatalf("flood: truncated=%v, %d lines, %d bytes, last %q", flood.LogsTruncated, len(flood.Logs), n, flood.Logs[len(flood.Logs)-1])
	}

	// Newest first, filtered.
	list, err := guest.ListActivations(ctxT(t), client.ActivationFilter{Module: "_"})
	if err != nil || len(list) != 4 || list[0].ID != ids["trap"] || list[3].ID != ids["echo"] {
		t.Fatalf("list: %v %+v", err, list)
	}
	fails, err := guest.ListActivations(ctxT(t), client.ActivationFilter{Status: "function_error"})
	if err != nil || len(fails) != 1 || fails[0].ID != ids["fail"] {
		t.Fatalf("status filter: %v %+v", err, fails)
	}

	// Another subject sees nothing of guest's; an admin sees everything.
	admin := core.Client(core.Admin)
	cred, err := admin.CreateSubject(ctxT(t), "bob")
	if err != nil {
		t.Fatal(err)
	}
	bob := core.Client(cred.Token)
	if _, err := bob.GetActivation(ctxT(t), ids["echo"]); !client.IsStatus(err, 404) {
		t.Fatalf("bob read guest's record: %v", err)
	}
	if l, err := bob.ListActivations(ctxT(t), client.ActivationFilter{}); err != nil || len(l) != 0 {
		t.Fatalf("bob's list: %v %+v", err, l)
	}
	if _, err := admin.GetActivation(ctxT(t), ids["echo"]); err != nil {
		t.Fatalf("admin: %v", err)
	}
	// An async answer carries the header too.
	resp, body := post(t, core, core.Guest, "/v1/fn/_/echo?async=true", `{}`)
	if resp.StatusCode != 202 || resp.Header.Get("X-Edgefaas-Activation") == "" || !strings.Contains(body, resp.Header.Get("X-Edgefaas-Activation")) {
		t.Fatalf("async: %d %v %s", resp.StatusCode, resp.Header, body)
	}
}

// submitAll queues n async calls of mod/fn with args from argsOf, 16 at a
// time, and returns the acknowledged ids in order of i.
func submitAll(t *testing.T, cl *client.Client, mod, fn string, n int, argsOf func(i int) string) []string {
	t.Helper()
	ids := make([]string, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	next := 0
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= n {
					return
				}
				id, err := cl.InvokeAsync(ctxT(t), mod, fn, json.RawMessage(argsOf(i)), "")
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("submit %d: %w", i, err)
				}
				ids[i] = id
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	return ids
}

// TestThousandAsync: 1,000 async invocations all end in success, each with
// its own result and exactly one record.
func TestThousandAsync(t *testing.T) {
	core := cluster(t)
	guest := core.Client(core.Guest)
	upload(t, guest, "_", "echo", "test/echo", nil)
	const n = 1000
	ids := submitAll(t, guest, "_", "echo", n, func(i int) string { return fmt.Sprintf(`{"i":%d}`, i) })
	for i, id := range ids {
		a := waitFinal(t, guest, id, 2*time.Minute)
		if a.Status != "success" || string(a.Result) != fmt.Sprintf(`{"i":%d}`, i) || !a.Async || a.Attempts != 1 {
			t.Fatalf("activation %d: %+v", i, a)
		}
	}
	recs := all(t, guest, "_", "echo")
	seen := map[string]int{}
	for _, r := range recs {
		seen[r.ID]++
	}
	if len(recs) != n || len(seen) != n {
		t.Fatalf("%d records, %d distinct, want %d", len(recs), len(seen), n)
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Fatalf("activation %s has %d records", id, seen[id])
		}
	}
}

// TestCoreKill9: the core is killed with async work queued and running;
// after the restart every acknowledged activation completes or is lost,
// and an idempotent function's interrupted calls run again.
func TestCoreKill9(t *testing.T) {
	core := cluster(t, "--async-per-function", "4")
	guest := core.Client(core.Guest)
	upload(t, guest, "_", "sleep", "sleep", nil)
	upload(t, guest, "_", "isleep", "sleep", &client.Metadata{Idempotent: true})
	const n = 40
	plain := submitAll(t, guest, "_", "sleep", n, func(int) string { return `{"ms":400}` })
	idem := submitAll(t, guest, "_", "isleep", n, func(int) string { return `{"ms":400}` })
	// Wait until some of both are running (and therefore most still queued).
	wait.For(t, 30*time.Second, "some of both running", func() bool {
		r1, _ := guest.ListActivations(ctxT(t), client.ActivationFilter{Function: "sleep", Status: "running"})
		r2, _ := guest.ListActivations(ctxT(t), client.ActivationFilter{Function: "isleep", Status: "running"})
		return len(r1) > 0 && len(r2) > 0
	})
	core.Kill()
	core.Restart()
	count := map[string]int{}
	for _, id := range plain {
		a := waitFinal(t, guest, id, 2*time.Minute)
		if a.Status != "success" && a.Status != "lost" {
			t.Fatalf("sleep %s ended %s: %+v", id, a.Status, a)
		}
		count[a.Status]++
	}
	for _, id := range idem {
		if a := waitFinal(t, guest, id, 2*time.Minute); a.Status != "success" {
			t.Fatalf("idempotent %s ended %s: %+v", id, a.Status, a)
		}
	}
	if count["lost"] == 0 || count["success"] == 0 {
		t.Fatalf("non-idempotent outcomes %v: expected both lost (running at the kill) and success (queued)", count)
	}
	t.Logf("non-idempotent after kill -9: %v", count)
}

// TestWorkerKill9: a worker killed mid-call: its started calls are lost,
// the calls not yet started run on the other worker.
func TestWorkerKill9(t *testing.T) {
	core := testcluster.StartCore(t, "--async-per-function", "4")
	workers := map[string]*testcluster.Proc{
		"worker@127.0.0.2": core.StartWorker(t, "127.0.0.2"),
		"worker@127.0.0.3": core.StartWorker(t, "127.0.0.3"),
	}
	guest := core.Client(core.Guest)
	upload(t, guest, "_", "sleep", "sleep", nil)
	const n = 24
	ids := submitAll(t, guest, "_", "sleep", n, func(int) string { return `{"ms":1500}` })
	// Kill a worker its own report shows running calls.
	victim := ""
	core.WaitWorkers(t, func(ns []client.Node) bool {
		for _, nd := range ns {
			if nd.Running > 0 && workers[nd.Name] != nil {
				victim = nd.Name
				return true
			}
		}
		return false
	})
	workers[victim].Kill()
	count := map[string]int{}
	for _, id := range ids {
		a := waitFinal(t, guest, id, 2*time.Minute)
		switch a.Status {
		case "lost":
			if a.Worker != victim {
				t.Fatalf("lost on %s, not the killed worker %s: %+v", a.Worker, victim, a)
			}
		case "success":
		default:
			t.Fatalf("%s ended %s: %+v", id, a.Status, a)
		}
		count[a.Status]++
	}
	if count["success"]+count["lost"] != n || count["success"] < n-4 || count["lost"] < 1 {
		t.Fatalf("outcomes %v of %d (at most 4 ran at once)", count, n)
	}
	t.Logf("after the kill -9 of %s: %v", victim, count)
}

// TestRetention: records older than the retention are deleted, and the
// oldest go first when the records exceed their byte budget.
func TestRetention(t *testing.T) {
	t.Run("age", func(t *testing.T) {
		core := testcluster.StartCore(t, "--activation-retention", "1s", "--activation-prune-every", "100ms")
		core.StartWorker(t, "127.0.0.2")
		guest := core.Client(core.Guest)
		upload(t, guest, "_", "echo", "test/echo", nil)
		for range 5 {
			if _, err := guest.Invoke(ctxT(t), "_", "echo", nil); err != nil {
				t.Fatal(err)
			}
		}
		wait.ForState(t, 30*time.Second, "no record outlives a 1 s retention", func() (bool, string) {
			l, err := guest.ListActivations(ctxT(t), client.ActivationFilter{})
			if err != nil {
				t.Fatal(err)
			}
			return len(l) == 0, fmt.Sprintf("%d records", len(l))
		})
	})
	t.Run("bytes", func(t *testing.T) {
		const budget = 20000
		core := testcluster.StartCore(t, "--activation-max-bytes", fmt.Sprint(budget), "--activation-prune-every", "100ms")
		core.StartWorker(t, "127.0.0.2")
		guest := core.Client(core.Guest)
		upload(t, guest, "_", "echo", "test/echo", nil)
		const n = 100
		var ids []string
		for i := range n {
			resp, body := post(t, core, core.Guest, "/v1/fn/_/echo", fmt.Sprintf(`{"args":{"pad":%q}}`, strings.Repeat("x", 200+i)))
			if resp.StatusCode != 200 {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
			ids = append(ids, resp.Header.Get("X-Edgefaas-Activation"))
		}
		var l []client.Activation
		wait.ForState(t, 30*time.Second, "the records within the budget", func() (bool, string) {
			var err error
			if l, err = guest.ListActivations(ctxT(t), client.ActivationFilter{Limit: 1000}); err != nil {
				t.Fatal(err)
			}
			size := 0
			for _, a := range l {
				b, _ := json.Marshal(a)
				size += len(b)
			}
			// The budget counts the stored form (keys and values, binary),
			// which the core reports; it is smaller than the JSON the API
			// answers with, but not by half.
			stored := core.Metric(t, "edgefaas_activation_records_bytes")
			// The newest record listed: the writer has caught up (it
			// commits synchronous records a few milliseconds later).
			return len(l) > 0 && l[0].ID == ids[n-1] && len(l) < n && stored <= budget && size <= 2*budget,
				fmt.Sprintf("%d records of %d bytes as JSON, %v stored, with a budget of %d", len(l), size, stored, budget)
		})
		// What is left is the newest records, in order.
		for i, a := range l {
			if a.ID != ids[n-1-i] {
				t.Fatalf("record %d left is %s, want the newest %s", i, a.ID, ids[n-1-i])
			}
		}
		t.Logf("%d of %d records kept within %d bytes", len(l), n, budget)
	})
}

// TestCallback: the finished record is POSTed to the callback URL under
// the core's egress policy, retried after a failure; without a grant the
// core does not send it.
func TestCallback(t *testing.T) {
	type hit struct {
		status int
		rec    client.Activation
	}
	hits := make(chan hit, 10)
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Data client.Activation }
		json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		calls++
		status := 200
		if calls == 1 {
			status = 500 // the first try fails: the core retries
		}
		mu.Unlock()
		w.WriteHeader(status)
		hits <- hit{status, body.Data}
	}))
	defer srv.Close()

	core := testcluster.StartCore(t, "--callback-allow-host", "127.0.0.1", "--callback-allow-net", "127.0.0.0/8")
	core.StartWorker(t, "127.0.0.2")
	guest := core.Client(core.Guest)
	upload(t, guest, "_", "echo", "test/echo", nil)
	id, err := guest.InvokeAsync(ctxT(t), "_", "echo", json.RawMessage(`{"k":"v"}`), srv.URL+"/done")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []int{500, 200} {
		select {
		case h := <-hits:
			if h.status != want || h.rec.ID != id || h.rec.Status != "success" || string(h.rec.Result) != `{"k":"v"}` {
				t.Fatalf("callback: %+v, want status %d for %s", h, want, id)
			}
		case <-time.After(60 * time.Second):
			t.Fatalf("no callback (want the try answered %d)", want)
		}
	}
	if _, err := guest.InvokeAsync(ctxT(t), "_", "echo", nil, "ftp://x"); !client.IsStatus(err, 400) {
		t.Fatalf("ftp callback: %v", err)
	}

	// A core that grants no callback host never sends one.
	strict := testcluster.StartCore(t)
	strict.StartWorker(t, "127.0.0.3")
	sg := strict.Client(strict.Guest)
	upload(t, sg, "_", "echo", "test/echo", nil)
	id, err = sg.InvokeAsync(ctxT(t), "_", "echo", nil, srv.URL+"/denied")
	if err != nil {
		t.Fatal(err)
	}
	waitFinal(t, sg, id, 30*time.Second)
	strict.WaitLog(regexp.MustCompile(`callback not delivered; giving up.*`+id), 2*time.Minute)
	select {
	case h := <-hits:
		t.Fatalf("a denied callback arrived: %+v", h)
	default:
	}
}

// TestQueueFull: beyond --async-max-queued a submit is refused with 429
// and Retry-After, and nothing of it is stored; the accepted ones finish.
func TestQueueFull(t *testing.T) {
	core := testcluster.StartCore(t, "--async-max-queued", "3", "--async-per-function", "1")
	core.StartWorker(t, "127.0.0.2")
	guest := core.Client(core.Guest)
	upload(t, guest, "_", "sleep", "sleep", nil)
	ids := submitAll(t, guest, "_", "sleep", 3, func(int) string { return `{"ms":2000}` })
	resp, body := post(t, core, core.Guest, "/v1/fn/_/sleep?async=true", `{"args":{"ms":1}}`)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "queue is full") {
		t.Fatalf("4th submit: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	for _, id := range ids {
		if a := waitFinal(t, guest, id, time.Minute); a.Status != "success" {
			t.Fatalf("%+v", a)
		}
	}
	if l := all(t, guest, "_", "sleep"); len(l) != 3 {
		t.Fatalf("%d records, want the 3 accepted", len(l))
	}
}

// TestSyncRecordsSwitch: with --activation-records=async synchronous calls
// keep no record and carry no header, but are counted in the metrics, and
// an asynchronous call still gets its record; with the default every
// synchronous call gets exactly one record, the one its header names.
func TestSyncRecordsSwitch(t *testing.T) {
	const n = 50
	for _, mode := range []string{"async", "all"} {
		core := testcluster.StartCore(t, "--activation-records="+mode)
		core.StartWorker(t, "127.0.0.2")
		guest := core.Client(core.Guest)
		upload(t, guest, "_", "echo", "test/echo", nil)
		var headers []string
		for i := range n {
			resp, body := post(t, core, core.Guest, "/v1/fn/_/echo", fmt.Sprintf(`{"args":{"i":%d}}`, i))
			if resp.StatusCode != 200 || body != fmt.Sprintf(`{"data":{"i":%d}}`, i)+"\n" {
				t.Fatalf("%s: call %d: %d %q", mode, i, resp.StatusCode, body)
			}
			if id := resp.Header.Get("X-Edgefaas-Activation"); id != "" {
				headers = append(headers, id)
			}
		}
		ids := submitAll(t, guest, "_", "echo", 1, func(int) string { return `{"async":1}` })
		if a := waitFinal(t, guest, ids[0], time.Minute); a.Status != "success" || !a.Async {
			t.Fatalf("%s: async record %+v", mode, a)
		}
		// The writer commits synchronous records within milliseconds; the
		// async record was committed after them, so they are all there.
		recs := all(t, guest, "_", "echo")
		switch mode {
		case "async":
			if len(headers) != 0 || len(recs) != 1 || recs[0].ID != ids[0] {
				t.Fatalf("records off: %d headers, records %+v", len(headers), recs)
			}
		case "all":
			if len(headers) != n || len(recs) != n+1 {
				t.Fatalf("records on: %d headers, %d records, want %d and %d", len(headers), len(recs), n, n+1)
			}
			for i, id := range headers {
				// Newest first: the async one, then the calls in reverse.
				if got := recs[n-i].ID; got != id {
					t.Fatalf("record %d is %s, its header said %s", i, got, id)
				}
			}
		}
		if got := core.Metric(t, `edgefaas_function_invocations_total{function="echo",module="_",status="success"}`); got != float64(n+1) {
			t.Fatalf("%s: %v successful invocations counted, want %d", mode, got, n+1)
		}
	}
}
