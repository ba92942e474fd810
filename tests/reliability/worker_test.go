package reliability_test

import (
	"fmt"
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

// pidOf finds the process whose command line contains marker (a data
// directory unique to the test).
func pidOf(t testing.TB, marker string) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), marker) && !strings.Contains(string(b), "ip\x00netns") {
			return pid
		}
	}
	t.Fatalf("no process with %s", marker)
	return 0
}

// rss returns a process's resident memory in KiB and its thread count.
func rss(pid int) (kib, threads int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "VmRSS:" {
			kib, _ = strconv.Atoi(f[1])
		}
		if len(f) >= 2 && f[0] == "Threads:" {
			threads, _ = strconv.Atoi(f[1])
		}
	}
	return
}

// TestOverload sends far more concurrent invocations than the worker can
// run or queue: the excess gets an explicit 429 quickly, accepted work
// completes, the worker's memory stays bounded, and every request is
// answered.
func TestOverload(t *testing.T) {
	core := testcluster.StartCore(t)
	w := core.StartWorker(t, "127.0.0.2", "--max-concurrent", "4", "--max-queue", "8")
	cl := core.Client(core.Guest)
	if _, err := cl.CreateFunction(ctxT(t), "_", client.Upload{Name: "sleep", Code: testmodules.Read(t, "sleep")}); err != nil {
		t.Fatal(err)
	}
	call(cl, "_", "sleep", `{"ms":1}`, time.Minute, 0)
	pid := pidOf(t, filepath.Join(w.Dir, "worker"))
	rss0, _ := rss(pid)
	waves, clients := pick(3, 10), pick(150, 400)
	var tl tally
	var busyMax time.Duration
	var okMin time.Duration = time.Hour
	var mu sync.Mutex
	maxRSS := rss0
	for range waves {
		var wg sync.WaitGroup
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o := call(cl, "_", "sleep", `{"ms":300}`, 2*time.Minute, 0)
				tl.add(o)
				mu.Lock()
				if o.status == 429 {
					busyMax = max(busyMax, o.took)
				} else if o.status == 200 {
					okMin = min(okMin, o.took)
				}
				mu.Unlock()
			}()
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
	sample:
		for {
			select {
			case <-done:
				break sample
			case <-time.After(100 * time.Millisecond):
				r, _ := rss(pid)
				maxRSS = max(maxRSS, r)
			}
		}
	}
	t.Logf("sent %d: %v; slowest busy answer %s, fastest success %s; worker RSS %d → max %d KiB; samples %v",
		tl.sent, tl.byStatus, busyMax, okMin, rss0, maxRSS, tl.samples)
	if tl.answered() != tl.sent {
		t.Fatalf("%d of %d requests got no answer", tl.sent-tl.answered(), tl.sent)
	}
	for s := range tl.byStatus {
		if s != 200 && s != 429 {
			t.Fatalf("unexpected status %d: %s", s, tl.samples[s])
		}
	}
	if tl.byStatus[429] == 0 || tl.byStatus[200] < 12 {
		t.Fatalf("want both accepted work and busy answers: %v", tl.byStatus)
	}
	if !strings.Contains(strings.ToLower(tl.samples[429]), "busy") && !strings.Contains(strings.ToLower(tl.samples[429]), "capacity") {
		t.Fatalf("busy answer does not say so: %q", tl.samples[429])
	}
	// Bounded memory: the worker holds at most max-concurrent+max-queue
	// calls, so RSS may not grow with the number of rejected ones.
	if maxRSS > rss0+256<<10 {
		t.Fatalf("worker RSS grew from %d to %d KiB under overload", rss0, maxRSS)
	}
	record(row{Test: "overload (max-concurrent 4, queue 8)", Sent: tl.sent, Answered: tl.answered(), FailedFast: tl.failedFast(),
		Note: fmt.Sprintf("%d ran, %d answered 429 busy (slowest busy answer %s); worker RSS %d→%d MiB", tl.byStatus[200], tl.byStatus[429], busyMax.Round(time.Millisecond), rss0>>10, maxRSS>>10)})
}

// TestWorkerKill kills a worker with SIGKILL during a stream of
// invocations, several times: every request is answered (succeeded on the
// other worker, or failed fast with 503 "went down"), and each restart
// loads the function from its on-disk compile cache instead of compiling
// it again.
func TestWorkerKill(t *testing.T) {
	core := testcluster.StartCore(t)
	a := core.StartWorker(t, "127.0.0.2", "--log-level", "debug")
	core.StartWorker(t, "127.0.0.3")
	cl := core.Client(core.Guest)
	f, err := cl.CreateFunction(ctxT(t), "_", client.Upload{Name: "sleep", Code: testmodules.Read(t, "sleep"), Metadata: &client.Metadata{TimeoutMS: 30000}})
	if err != nil {
		t.Fatal(err)
	}
	kills := pick(2, 8)
	var tl tally
	var cacheEntries int
	for range kills {
		core.WaitWorkers(t, func(ns []client.Node) bool {
			return testcluster.Has(ns, "worker@127.0.0.2") && testcluster.Has(ns, "worker@127.0.0.3")
		})
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					tl.add(call(cl, "_", "sleep", `{"ms":80}`, time.Minute, 3))
				}
			}()
		}
		core.WaitWorkers(t, func(ns []client.Node) bool { return testcluster.Invocations(ns, "worker@127.0.0.2") >= 3 })
		a.Kill()
		// Calls go on past the kill: six more answered since.
		killedAt := tl.count()
		wait.For(t, time.Minute, "calls answered after the kill", func() bool { return tl.count() >= killedAt+6 })
		close(stop)
		wg.Wait()
		before := cacheFiles(t, filepath.Join(a.Dir, "worker"))
		a.Restart()
		// The restarted worker compiles the function again (the core sends
		// it the code), but from its compile cache.
		core.WaitWorkers(t, func(ns []client.Node) bool {
			for _, n := range ns {
				if n.Name == "worker@127.0.0.2" {
					for _, h := range n.Functions {
						if h == f.Hash {
							return true
						}
					}
				}
			}
			return false
		})
		// A compile-cache hit writes nothing: the cache holds the same
		// entries after the restart's compile as before it.
		after := cacheFiles(t, filepath.Join(a.Dir, "worker"))
		if len(before) == 0 || !slices.Equal(before, after) {
			t.Fatalf("compile cache not reused: entries before restart %v, after %v", before, after)
		}
		cacheEntries = len(after)
	}
	t.Logf("answers %v of %d (client retries %d); slowest %s; %d compile-cache entries reused by every restart",
		tl.byStatus, tl.sent, tl.retried, tl.slowest, cacheEntries)
	if tl.answered() != tl.sent {
		t.Fatalf("%d requests unanswered", tl.sent-tl.answered())
	}
	for s, n := range tl.byStatus {
		if s != 200 && !(s == 503 && strings.Contains(tl.samples[s], "went down")) {
			t.Fatalf("%d answers %d %q", n, s, tl.samples[s])
		}
	}
	if tl.slowest >= 30*time.Second {
		t.Fatalf("a request waited out its timeout (%s)", tl.slowest)
	}
	record(row{Test: "worker SIGKILL during invocations", Faults: kills, Sent: tl.sent, Answered: tl.answered(), Retried: tl.retried, FailedFast: tl.failedFast(),
		Note: fmt.Sprintf("%d ok, %d failed fast 503 (in flight on the killed worker); every restart recompiled from the on-disk compile cache (no new entry)", tl.byStatus[200], tl.byStatus[503])})
}

// cacheFiles lists the files of a worker's on-disk compile cache.
func cacheFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	var out []string
	root := filepath.Join(dataDir, "compiled")
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, strings.TrimPrefix(p, root))
		}
		return nil
	})
	slices.Sort(out)
	return out
}
