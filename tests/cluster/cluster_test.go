// Package cluster_test runs the real edgefaas binary as separate
// processes, a core and workers on 127.0.0.x, and checks the platform end
// to end: uploads, invocations of every example, propagation of updates
// and deletes, and what happens when workers or the core die.
package cluster_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/matrix"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func upload(t *testing.T, cl *client.Client, mod, name, module string, md *client.Metadata) client.Function {
	t.Helper()
	f, err := cl.CreateFunction(ctx(t), mod, client.Upload{Name: name, Code: testmodules.Read(t, module), Metadata: md})
	if err != nil {
		t.Fatalf("upload %s: %v", name, err)
	}
	return f
}

func invoke(t *testing.T, cl *client.Client, mod, name, args string) string {
	t.Helper()
	out, err := cl.Invoke(ctx(t), mod, name, json.RawMessage(args))
	if err != nil {
		t.Fatalf("invoke %s/%s: %v", mod, name, err)
	}
	return string(out)
}

func hasFunction(ns []client.Node, node, hash string, want bool) bool {
	for _, n := range ns {
		if n.Name == node {
			return slices.Contains(n.Functions, hash) == want
		}
	}
	return false
}

// TestEndToEnd: a core and two workers; every example is uploaded and
// invoked; an update and a delete reach both workers.
func TestEndToEnd(t *testing.T) {
	core := testcluster.StartCore(t)
	core.StartWorker(t, "127.0.0.2", "--allow-net", "127.0.0.0/8", "--egress-allow", "*")
	core.StartWorker(t, "127.0.0.3", "--allow-net", "127.0.0.0/8", "--egress-allow", "*")
	cl := core.Client(core.Guest)
	if err := cl.CreateModule(ctx(t), "demo"); err != nil {
		t.Fatal(err)
	}

	// Outbound targets on loopback, granted to the functions that use them.
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) }))
	defer web.Close()
	echo := echoServer(t)
	webHost := strings.TrimPrefix(web.URL, "http://")

	hello := upload(t, cl, "demo", "hello", "hello", nil)
	upload(t, cl, "demo", "hellowasi", "hello-wasi-go", nil)
	upload(t, cl, "demo", "helloc", "hello-c", nil)
	upload(t, cl, "demo", "matrix", "matrixmult", nil)
	upload(t, cl, "demo", "sleep", "sleep", nil)
	upload(t, cl, "demo", "network", "network", &client.Metadata{AllowedHosts: []string{webHost}})
	upload(t, cl, "demo", "reply", "server-reply", &client.Metadata{AllowedHosts: []string{echo}})

	// wait_for_workers (the default) answered only after a worker compiled
	// hello, so some worker lists it now.
	ns := core.WaitWorkers(t, func(ns []client.Node) bool { return true })
	if !hasFunction(ns, "worker@127.0.0.2", hello.Hash, true) && !hasFunction(ns, "worker@127.0.0.3", hello.Hash, true) {
		t.Fatalf("no worker had hello compiled when its upload was acknowledged: %+v", ns)
	}

	for _, name := range []string{"hello", "hellowasi", "helloc"} {
		got := invoke(t, cl, "demo", name, `{"name":"edge"}`)
		if got != `{"message":"Hello, edge!"}` {
			t.Fatalf("%s: %s", name, got)
		}
	}
	want, _ := json.Marshal(map[string]any{"checksum": matrix.Multiply(100, 42), "n": 100})
	if got := invoke(t, cl, "demo", "matrix", `{}`); got != string(want) {
		t.Fatalf("matrix: %s, want %s", got, want)
	}
	if got := invoke(t, cl, "demo", "sleep", `{"ms":50}`); got != `"Slept for 0.05 seconds"` {
		t.Fatalf("sleep: %s", got)
	}
	var net struct{ Requests []struct{ Status int } }
	if err := json.Unmarshal([]byte(invoke(t, cl, "demo", "network", `{"url":"`+web.URL+`","count":3}`)), &net); err != nil || len(net.Requests) != 3 || net.Requests[2].Status != 200 {
		t.Fatalf("network: %+v %v", net, err)
	}
	if got := invoke(t, cl, "demo", "reply", `{"address":"`+echo+`","message":"marco"}`); got != `{"reply":"polo: marco"}` {
		t.Fatalf("server-reply: %s", got)
	}
	// Functions without the grant are refused by the worker's policy.
	upload(t, cl, "demo", "nogrant", "network", nil)
	_, err := cl.Invoke(ctx(t), "demo", "nogrant", json.RawMessage(`{"url":"`+web.URL+`","count":1}`))
	if !client.IsStatus(err, 422) || !strings.Contains(err.Error(), "host not allowed") {
		t.Fatalf("ungranted request: %v", err)
	}

	// Both workers hold hello; an update replaces it with the C version
	// everywhere and evicts the old hash.
	for _, w := range []string{"worker@127.0.0.2", "worker@127.0.0.3"} {
		core.WaitWorkers(t, func(ns []client.Node) bool { return hasFunction(ns, w, hello.Hash, true) })
	}
	updated, err := cl.UpdateFunction(ctx(t), "demo", "hello", client.Upload{Code: testmodules.Read(t, "hello-c")})
	if err != nil {
		t.Fatal(err)
	}
	if got := invoke(t, cl, "demo", "hello", `{"name":"C"}`); got != `{"message":"Hello, C!"}` {
		t.Fatalf("after update: %s", got)
	}
	for _, w := range []string{"worker@127.0.0.2", "worker@127.0.0.3"} {
		core.WaitWorkers(t, func(ns []client.Node) bool { return hasFunction(ns, w, hello.Hash, false) })
	}
	// hello now runs the same code as helloc: deleting hello must not
	// evict code that helloc still uses; deleting helloc then does.
	if err := cl.DeleteFunction(ctx(t), "demo", "hello"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Invoke(ctx(t), "demo", "hello", nil); !client.IsStatus(err, 404) {
		t.Fatalf("deleted function: %v", err)
	}
	if got := invoke(t, cl, "demo", "helloc", `{"name":"still"}`); got != `{"message":"Hello, still!"}` {
		t.Fatalf("shared code after delete: %s", got)
	}
	if err := cl.DeleteFunction(ctx(t), "demo", "helloc"); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"worker@127.0.0.2", "worker@127.0.0.3"} {
		core.WaitWorkers(t, func(ns []client.Node) bool { return hasFunction(ns, w, updated.Hash, false) })
	}
}

// echoServer answers each line "marco" with "polo: marco".
func echoServer(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				c.Write([]byte("polo: " + line))
			}()
		}
	}()
	return l.Addr().String()
}

type outcome struct {
	status  int // 200, or the API error's status
	took    time.Duration
	message string
}

// stream invokes fn from n goroutines, count times each, until stop.
func stream(cl *client.Client, mod, fn, args string, n, count int) (chan outcome, *sync.WaitGroup) {
	out := make(chan outcome, n*count)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range count {
				c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				t0 := time.Now()
				_, err := cl.Invoke(c, mod, fn, json.RawMessage(args))
				cancel()
				o := outcome{status: 200, took: time.Since(t0)}
				var ae *client.Error
				if errors.As(err, &ae) {
					o.status, o.message = ae.Status, ae.Detail
				} else if err != nil {
					o.status, o.message = -1, err.Error()
				}
				out <- o
			}
		}()
	}
	return out, &wg
}

// TestWorkerKilled kills a worker with SIGKILL during a stream of
// invocations: every request is answered, none waits for its timeout,
// later ones succeed on the other worker, and the restarted worker is
// used again.
func TestWorkerKilled(t *testing.T) {
	core := testcluster.StartCore(t)
	a := core.StartWorker(t, "127.0.0.2")
	core.StartWorker(t, "127.0.0.3")
	cl := core.Client(core.Guest)
	const timeout = 30 * time.Second
	upload(t, cl, "_", "sleep", "sleep", &client.Metadata{TimeoutMS: timeout.Milliseconds()})

	const clients, each = 6, 15
	results, wg := stream(cl, "_", "sleep", `{"ms":100}`, clients, each)
	// Kill worker A once it has run some invocations.
	core.WaitWorkers(t, func(ns []client.Node) bool { return testcluster.Invocations(ns, "worker@127.0.0.2") >= 5 })
	a.Kill()
	wg.Wait()
	close(results)

	counts := map[int]int{}
	total := 0
	var slowest time.Duration
	for o := range results {
		total++
		counts[o.status]++
		slowest = max(slowest, o.took)
		if o.status != 200 && !(o.status == 503 && strings.Contains(o.message, "worker@127.0.0.2 went down")) {
			t.Errorf("unexpected answer %d %q", o.status, o.message)
		}
	}
	t.Logf("answers: %v of %d; slowest %s", counts, total, slowest)
	if total != clients*each {
		t.Fatalf("%d answers for %d requests", total, clients*each)
	}
	if slowest >= timeout {
		t.Fatalf("a request waited %s, its whole timeout: the loss was not detected", slowest)
	}
	if counts[200] < total/2 {
		t.Fatalf("only %d of %d succeeded", counts[200], total)
	}
	// The core's metrics count the same answers.
	if got := int(core.Metric(t, `edgefaas_invocations_total{result="worker_lost"}`)); got != counts[503] {
		t.Fatalf("metrics count %d worker_lost, the clients saw %d", got, counts[503])
	}
	// The lost worker is gone from the table, the other serves everything.
	core.WaitWorkers(t, func(ns []client.Node) bool { return !testcluster.Has(ns, "worker@127.0.0.2") })
	for range 5 {
		invoke(t, cl, "_", "sleep", `{"ms":1}`)
	}
	// Restarted on the same data directory, it rejoins and takes work again.
	a.Restart()
	core.WaitWorkers(t, func(ns []client.Node) bool { return testcluster.Has(ns, "worker@127.0.0.2") })
	results, wg = stream(cl, "_", "sleep", `{"ms":50}`, 4, 5)
	wg.Wait()
	close(results)
	for o := range results {
		if o.status != 200 {
			t.Fatalf("after restart: %d %s", o.status, o.message)
		}
	}
	core.WaitWorkers(t, func(ns []client.Node) bool { return testcluster.Invocations(ns, "worker@127.0.0.2") > 0 })
}

// TestCoreRestart kills the core; its workers find it again when it
// restarts, and the stored functions are invocable.
func TestCoreRestart(t *testing.T) {
	core := testcluster.StartCore(t)
	core.StartWorker(t, "127.0.0.2")
	cl := core.Client(core.Guest)
	upload(t, cl, "_", "hello", "hello", nil)
	invoke(t, cl, "_", "hello", `{}`)

	core.Kill()
	core.Restart()
	core.WaitWorkers(t, func(ns []client.Node) bool { return testcluster.Has(ns, "worker@127.0.0.2") })
	if got := invoke(t, cl, "_", "hello", `{"name":"again"}`); got != `{"message":"Hello, again!"}` {
		t.Fatalf("after core restart: %s", got)
	}
}
