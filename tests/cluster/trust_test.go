package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// argAfter is the value of flag in a process's arguments.
func argAfter(t *testing.T, args []string, flag string) string {
	t.Helper()
	i := slices.Index(args, flag)
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("no %s in %v", flag, args)
	}
	return args[i+1]
}

// scrape reads one sample from a public /metrics endpoint (0 when absent).
func scrape(t *testing.T, url, series string) float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	return 0
}

func refused(message, reason string) string {
	return `edgefaas_cluster_refused_messages_total{message="` + message + `",reason="` + reason + `"}`
}

// TestForgedMessagesRefused: a hostile worker (tests/cluster/forger, a
// real worker node built only by this test) answers every call ID the
// core may have in flight as the honest worker, reports the honest
// worker's load and a phantom worker, and sends the honest worker cancels,
// evictions, code and a fake core. Every honest call still gets its own
// answer, no forged state shows, and each forgery is refused and counted:
// on the core (results, reports) and on the honest worker (commands).
func TestForgedMessagesRefused(t *testing.T) {
	forgerBin, err := testcluster.BuildProgram("./tests/cluster/forger", "forgery")
	if err != nil {
		t.Fatal(err)
	}
	// The forger's accessors exist only under the forgery tag: the binary
	// the tests run (built as released) has none of them.
	for bin, want := range map[string]bool{forgerBin: true, testcluster.Binary(t): false} {
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if got := bytes.Contains(b, []byte("ForgeryNode")); got != want {
			t.Fatalf("%s holds the forgery accessors: %v, want %v", bin, got, want)
		}
	}
	core := testcluster.StartCore(t)
	metricsAddr := "127.0.0.2:" + testcluster.Port(t, "127.0.0.2")
	honest := core.StartWorker(t, "127.0.0.2", "--tag", "honest", "--metrics-addr", metricsAddr, "--public-metrics")
	const victim = "worker@127.0.0.2"
	cl := core.Client(core.Guest)
	if err := cl.CreateModule(ctx(t), "trust"); err != nil {
		t.Fatal(err)
	}
	// Uploaded waiting for the worker's compile acknowledgement, which
	// must pass the registry's sender check (counted below).
	sleep, err := cl.CreateFunction(ctx(t), "trust", client.Upload{Name: "sleep", Code: testmodules.Read(t, "sleep"),
		Metadata: &client.Metadata{Tag: "honest"}, WaitForWorkers: new(true)})
	if err != nil {
		t.Fatal(err)
	}
	core.WaitWorkers(t, func(ns []client.Node) bool { return hasFunction(ns, victim, sleep.Hash, true) })

	dir := t.TempDir()
	forgerAddr := "127.0.0.9:" + testcluster.Port(t, "127.0.0.9")
	testcluster.StartProgram(t, forgerBin, nil, dir, "-join", core.NodeAddr, "-core", "core@127.0.0.1",
		"-join-token", core.JoinToken(t, "worker@127.0.0.9"), "-join-api", core.URL, "-node-addr", forgerAddr, "-data-dir", filepath.Join(dir, "forger"),
		"-victim", victim, "-victim-addr", victim+":"+strings.Split(argAfter(t, honest.Process.Args, "--node-addr"), ":")[1],
		"-evict", sleep.Hash, "-code", testmodules.Path(t, "hello-c"))
	core.WaitWorkers(t, func(ns []client.Node) bool { return testcluster.Has(ns, "worker@127.0.0.9") })

	// What a forgery would show: checked on every look at the node list.
	look := func() {
		t.Helper()
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ns, err := core.Client(core.Admin).ListNodes(c)
		if err != nil {
			return
		}
		for _, n := range ns {
			switch {
			case n.Name == "worker@127.0.0.66":
				t.Fatalf("a phantom worker reported by the forger is listed: %+v", n)
			case n.Name == victim && n.Running == 777:
				t.Fatalf("the forger's report of the honest worker's load was taken: %+v", n)
			}
		}
	}

	wantCore := []string{refused("result", "wrong_sender"), refused("report", "wrong_sender"), refused("cached", "wrong_sender")}
	wantWorker := []string{refused("cancel", "not_a_core"), refused("evict", "not_a_core"),
		refused("cache", "not_a_core"), refused("join", "not_a_core")}
	done := func() bool {
		for _, s := range wantCore {
			if core.Metric(t, s) == 0 {
				return false
			}
		}
		for _, s := range wantWorker {
			if scrape(t, "http://"+metricsAddr+"/metrics", s) == 0 {
				return false
			}
		}
		return true
	}
	// Rounds of honest calls in flight while the forger sprays, until every
	// kind of forgery was refused at least once; every answer is checked.
	calls := 0
	err = wait.Until(context.Background(), 3*time.Minute, "every kind of forgery refused while honest calls ran", func() bool {
		var wg sync.WaitGroup
		outs := make([]string, 4)
		errs := make([]error, 4)
		for i := range outs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := cl.Invoke(ctx(t), "trust", "sleep", json.RawMessage(`{"ms":1500}`))
				outs[i], errs[i] = string(out), err
			}()
		}
		look()
		wg.Wait()
		for i := range outs {
			calls++
			if errs[i] != nil {
				t.Fatalf("honest call %d failed: %v", calls, errs[i])
			}
			if outs[i] != `"Slept for 1.5 seconds"` {
				t.Fatalf("honest call %d answered %s", calls, outs[i])
			}
		}
		look()
		return done()
	})
	if err != nil {
		for _, s := range wantCore {
			t.Logf("core %s = %v", s, core.Metric(t, s))
		}
		for _, s := range wantWorker {
			t.Logf("worker %s = %v", s, scrape(t, "http://"+metricsAddr+"/metrics", s))
		}
		t.Fatal(err)
	}
	// The honest worker's acknowledgements carried their sender (sent by
	// name): none was refused as unverified.
	if n := core.Metric(t, refused("cached", "unverified")); n != 0 {
		t.Fatalf("%v honest compile acknowledgements refused as unverified", n)
	}
	// The honest worker kept its code and took none from the forger.
	ns := core.WaitWorkers(t, func(ns []client.Node) bool { return hasFunction(ns, victim, sleep.Hash, true) })
	for _, n := range ns {
		if n.Name == victim && len(n.Functions) != 1 {
			t.Fatalf("the honest worker holds %v, want only %s", n.Functions, sleep.Hash)
		}
	}
	t.Logf("%d honest calls answered honestly; core refused %v results, %v reports", calls,
		core.Metric(t, wantCore[0]), core.Metric(t, wantCore[1]))
}
