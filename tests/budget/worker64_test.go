package budget

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/memcgroup"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

// WorkerLimit is the smallest edge machine's share for a worker alone:
// a worker in 64 MiB, its core elsewhere.
const WorkerLimit = 64 << 20

// WorkerSlack is the part of WorkerLimit the worker's own accounting must
// leave to what it does not count: pages of its writes still dirty or
// under writeback (which a cgroup cannot drop and a slow or busy disk
// empties slowly; the worker paces its large writes to keep them within
// UnwrittenBound), kernel memory. The test's cgroup is WorkerLimit less
// WorkerSlack while the worker is told WorkerLimit (--memory).
const WorkerSlack = 8 << 20

// UnwrittenBound is the most of the worker's cgroup its writes may hold
// as page cache not yet on disk (dirty or under writeback) while it
// compiles: half of WorkerSlack. A compile writes its code to disk (the
// module as pushed, the compile cache's entry of several MiB of machine
// code) at the end of its largest working set; written at once, pages
// the cgroup's reclaim cannot drop until the disk has them took the
// cgroup to its limit, and a busy disk to an OOM kill.
const UnwrittenBound = WorkerSlack / 2

// goExamples are the six Go examples (five SDK reactors, one command).
var goExamples = []string{"hello", "sleep", "matrixmult", "server-reply", "network", "hello-wasi-go"}

// TestGoExamplesOnWorkerIn64MiB: a worker alone with a 64 MiB budget (its
// core outside it), in a memory cgroup WorkerSlack below that, compiles
// the six Go examples, one upload after another, each answered once the
// worker has compiled it, and runs each at 4 and 16 connections: no OOM
// kill by the cgroup's own counter, every request answered 200, or 429
// with Retry-After beyond the queue (never at 4 connections). While each
// compiles, the cgroup's page cache not yet on disk stays within
// UnwrittenBound. The cgroup's peak is logged per phase.
func TestGoExamplesOnWorkerIn64MiB(t *testing.T) {
	codes := map[string][]byte{}
	for _, ex := range goExamples {
		codes[ex] = testmodules.Read(t, ex)
	}
	core := testcluster.StartCore(t)
	g, err := memcgroup.New(fmt.Sprintf("edgefaas-%d-%s", os.Getpid(), t.Name()), WorkerLimit-WorkerSlack, memcgroup.BelowOwnOrRoot)
	if err != nil {
		t.Skipf("cannot make a memory cgroup here: %v", err)
	}
	t.Cleanup(func() {
		if err := g.Remove(); err != nil {
			t.Error(err)
		}
	})
	const host = "127.0.0.2"
	dir := t.TempDir()
	w := testcluster.StartWith(t, g.Wrap(), dir, "worker", "--data-dir", filepath.Join(dir, "worker"),
		"--node-addr", host+":"+testcluster.Port(t, host), "--join", core.NodeAddr,
		"--join-token", core.JoinToken(t, "worker@"+host), "--join-api", core.URL,
		"--allow-net", "127.0.0.0/8", "--egress-allow", "*", "--memory", strconv.Itoa(WorkerLimit>>20)+"MiB")
	nodes := core.WaitWorkers(t, func(ns []client.Node) bool { return testcluster.Has(ns, "worker@"+host) })
	if nodes[0].MemoryBudget != WorkerLimit {
		t.Errorf("the worker reports a budget of %d bytes; it was given %d", nodes[0].MemoryBudget, WorkerLimit)
	}
	kills := func() int64 {
		n, err := g.OOMKills()
		if err != nil {
			t.Fatalf("OOM kill counter: %v", err)
		}
		return n
	}
	// peak is the phase's figures: the worker's peak resident set (reset
	// by resetPeak), the cgroup's peak usage (page cache included, which
	// the kernel reclaims at the limit) and what its usage is made of now.
	resetPeak := func() {
		g.ResetPeak()
		os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", w.Pid()), []byte("5"), 0)
	}
	peak := func() string {
		p, err := g.Peak()
		if err != nil {
			return err.Error()
		}
		return fmt.Sprintf("worker peak RSS %s, cgroup peak %.1f MiB (now %s)", hwm(w.Pid()), float64(p)/(1<<20), stat(g))
	}
	t.Logf("worker started: %s", peak())

	usr := core.Client(core.Guest)
	echo, fetch := startEcho(t), startFetch(t)
	works := []workload{
		{"hello", "hello", `{"name":"edge"}`, nil, has("Hello, edge!")},
		{"sleep", "sleep", `{"ms":20}`, nil, has("Slept for")},
		{"matrixmult", "matrixmult", `{"n":100}`, nil, has(`"checksum"`)},
		{"server_reply", "server-reply", `{"address":"` + echo + `","message":"budget-ping"}`, []string{echo}, has("budget-ping")},
		{"network", "network", `{"url":"http://` + fetch + `/","count":4}`, []string{fetch}, has(`"status":200`)},
		{"hello_wasi_go", "hello-wasi-go", `{"name":"edge"}`, nil, has("Hello, edge!")},
	}
	for _, wl := range works {
		resetPeak()
		unwritten := watchUnwritten(t, g)
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Second)
		_, err := usr.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: wl.fn, Code: codes[wl.example],
			Metadata: &client.Metadata{AllowedHosts: wl.hosts}, WaitForWorkers: new(true)})
		cancel()
		if err != nil {
			t.Fatalf("upload %s: %v (OOM kills so far: %d; %s)", wl.example, err, kills(), peak())
		}
		most := unwritten()
		t.Logf("upload %s (%d bytes of wasm), compiled on the worker: %s; at most %.1f MiB unwritten", wl.example, len(codes[wl.example]), peak(), float64(most)/(1<<20))
		if most > UnwrittenBound {
			t.Errorf("while %s compiled, %.1f MiB of the worker's cgroup was page cache not yet on disk (bound %d MiB)", wl.example, float64(most)/(1<<20), UnwrittenBound>>20)
		}
		if n := kills(); n != 0 {
			t.Fatalf("the kernel OOM-killed %d process(es) in the worker's cgroup while %s compiled", n, wl.example)
		}
	}

	url := core.URL
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}, Timeout: 120 * time.Second}
	for _, wl := range works {
		for _, conns := range []int{4, 16} {
			resetPeak()
			got := drive(hc, url, core.Guest, wl, conns, 10)
			t.Logf("%s at %d connections: %v; %s", wl.example, conns, got, peak())
			if got.ok+got.busy != conns*10 {
				t.Errorf("%s at %d connections: %d of %d requests answered 200 or 429 with Retry-After: %v", wl.example, conns, got.ok+got.busy, conns*10, got)
			}
			if conns == 4 && got.busy > 0 {
				t.Errorf("%s at 4 connections: %d answered busy, within the queue", wl.example, got.busy)
			}
			if got.ok == 0 {
				t.Errorf("%s at %d connections: no request succeeded: %v", wl.example, conns, got)
			}
		}
	}
	if n := kills(); n != 0 {
		t.Fatalf("the kernel OOM-killed %d process(es) in the worker's cgroup", n)
	}
}

// watchUnwritten samples the group's page cache not yet on disk
// (memcgroup.Group.Unwritten) until the returned function is called, which
// returns the most it saw. A sample can miss a peak, never invent one.
func watchUnwritten(t *testing.T, g *memcgroup.Group) func() int64 {
	stop, done := make(chan struct{}), make(chan int64)
	go func() {
		var most int64
		for {
			select {
			case <-stop:
				done <- most
				return
			default:
			}
			if n, err := g.Unwritten(); err == nil {
				most = max(most, n)
			}
			time.Sleep(time.Millisecond)
		}
	}()
	return func() int64 {
		close(stop)
		return <-done
	}
}

// stat is the group's memory.stat lines that say what its usage is made
// of: anonymous memory and page cache (of it dirty, mapped).
func stat(g *memcgroup.Group) string {
	b, err := os.ReadFile(filepath.Join(g.Dir, "memory.stat"))
	if err != nil {
		return err.Error()
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, " ")
		switch k {
		case "rss", "cache", "mapped_file", "dirty", "writeback", "anon", "file", "file_dirty", "file_mapped":
			n, _ := strconv.ParseInt(v, 10, 64)
			out = append(out, fmt.Sprintf("%s %.1f", k, float64(n)/(1<<20)))
		}
	}
	return strings.Join(out, ", ") + " MiB"
}

// hwm is a process's peak resident set (VmHWM), for messages.
func hwm(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return err.Error()
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return fmt.Sprintf("%.1f MiB", float64(kb)/1024)
		}
	}
	return "unknown"
}
