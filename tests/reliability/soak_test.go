package reliability_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

// sample is one measurement of the processes during the soak.
type sample struct {
	coreRSS, workerRSS, coreGoroutines, workerThreads int
}

// TestSoak runs a mixed workload (reactor and command invocations,
// function errors, short sleeps, code updates) for -reliability.soak
// (20 s short, 5 min long), sampling the core's and worker's RSS, the
// core's goroutines and the worker's threads every second: after a warm-up
// third, the last third may not grow beyond the middle third by more than
// a slack. Every request is answered.
func TestSoak(t *testing.T) {
	d := *soakTime
	if d == 0 {
		d = pick(20*time.Second, 5*time.Minute)
	}
	core := testcluster.StartCore(t)
	w := core.StartWorker(t, "127.0.0.2")
	cl := core.Client(core.Guest)
	for name, mod := range map[string]string{"echo": "test/echo", "helloc": "hello-c", "fail": "test/fail", "sleep": "sleep", "hello": "hello"} {
		if _, err := cl.CreateFunction(ctxT(t), "_", client.Upload{Name: name, Code: testmodules.Read(t, mod)}); err != nil {
			t.Fatal(err)
		}
	}
	wpid := pidOf(t, filepath.Join(w.Dir, "worker"))
	cpid := pidOf(t, filepath.Join(core.Dir, "core"))
	var tl tally
	stop := make(chan struct{})
	var wg sync.WaitGroup
	calls := []struct{ fn, args string }{{"echo", `{"a":1}`}, {"helloc", `{"name":"x"}`}, {"fail", `{}`}, {"sleep", `{"ms":5}`}, {"hello", `{}`}}
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := calls[(i+c)%len(calls)]
				tl.add(call(cl, "_", k.fn, k.args, time.Minute, 3))
				if c == 0 && i%50 == 49 { // an update now and then
					code := testmodules.Read(t, []string{"hello-c", "test/echo"}[i/50%2])
					cl.UpdateFunction(context.Background(), "_", "helloc", client.Upload{Code: code})
				}
			}
		}()
	}
	var samples []sample
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(time.Second) { // one sample a second
		var s sample
		s.coreRSS, _ = rss(cpid)
		s.workerRSS, s.workerThreads = rss(wpid)
		s.coreGoroutines = int(core.Metric(t, "go_goroutines"))
		samples = append(samples, s)
	}
	close(stop)
	wg.Wait()
	if tl.answered() != tl.sent {
		t.Fatalf("%d of %d unanswered", tl.sent-tl.answered(), tl.sent)
	}
	for s, n := range tl.byStatus {
		if s != 200 && s != 422 {
			t.Fatalf("%d answers %d: %s", n, s, tl.samples[s])
		}
	}
	n := len(samples) / 3
	mid, last := avg(samples[n:2*n]), avg(samples[2*n:])
	t.Logf("%d requests %v over %s; middle third %+v, last third %+v", tl.sent, tl.byStatus, d, mid, last)
	check := func(what string, a, b, slack int) {
		if b > a+a/4+slack {
			t.Errorf("%s grows after warm-up: %d → %d", what, a, b)
		}
	}
	check("core RSS KiB", mid.coreRSS, last.coreRSS, 16<<10)
	check("worker RSS KiB", mid.workerRSS, last.workerRSS, 32<<10)
	check("core goroutines", mid.coreGoroutines, last.coreGoroutines, 20)
	check("worker threads", mid.workerThreads, last.workerThreads, 4)
	record(row{Test: fmt.Sprintf("soak %s, mixed workload", d), Sent: tl.sent, Answered: tl.answered(), Retried: tl.retried, FailedFast: tl.failedFast() - tl.byStatus[422],
		Note: fmt.Sprintf("%d function errors (expected); middle→last third: core RSS %d→%d MiB, worker RSS %d→%d MiB, core goroutines %d→%d, worker threads %d→%d",
			tl.byStatus[422], mid.coreRSS>>10, last.coreRSS>>10, mid.workerRSS>>10, last.workerRSS>>10, mid.coreGoroutines, last.coreGoroutines, mid.workerThreads, last.workerThreads)})
}

func avg(ss []sample) sample {
	var a sample
	for _, s := range ss {
		a.coreRSS += s.coreRSS
		a.workerRSS += s.workerRSS
		a.coreGoroutines += s.coreGoroutines
		a.workerThreads += s.workerThreads
	}
	if n := len(ss); n > 0 {
		a.coreRSS, a.workerRSS, a.coreGoroutines, a.workerThreads = a.coreRSS/n, a.workerRSS/n, a.coreGoroutines/n, a.workerThreads/n
	}
	return a
}
