package budget

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

// TestGoCompileLeavesNoPeakInTheWorker: a worker compiles a Go function in
// a child process, so the compiler's working set (several times the
// machine code it makes) never enters the worker. A core and a worker run
// as separate processes; the worker's peak resident size is reset and the
// Go hello uploaded (compiled on the worker before the answer), then called
// (its code, from the compile cache, runs). The worker's metrics count one
// compile in a child, whose peak resident size they report, and over the
// upload the worker's own peak grew by less than half the child's: the
// worker only loaded the entry the child wrote (its code mapped from the
// file). The worker's budget is 2 GiB, above the 1 GiB below which a
// worker compiles in process.
func TestGoCompileLeavesNoPeakInTheWorker(t *testing.T) {
	code := testmodules.Read(t, "hello")
	core := testcluster.StartCore(t)
	metrics := "127.0.0.2:" + testcluster.Port(t, "127.0.0.2")
	w := core.StartWorker(t, "127.0.0.2", "--metrics-addr", metrics, "--public-metrics", "--memory", "2GiB")
	usr := core.Client(core.Guest)
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", w.Pid()), []byte("5"), 0); err != nil {
		t.Fatalf("reset the worker's peak resident size: %v", err)
	}
	fresh := status(t, w.Pid(), "VmRSS")

	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	if _, err := usr.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: "hello", Code: code, WaitForWorkers: new(true)}); err != nil {
		t.Fatalf("upload: %v", err)
	}
	grown := status(t, w.Pid(), "VmHWM") - fresh
	out, err := usr.Invoke(ctx, client.DefaultModule, "hello", []byte(`{"name":"edge"}`))
	if err != nil || !strings.Contains(string(out), "Hello, edge!") {
		t.Fatalf("invoke: %q, %v", out, err)
	}
	compiled := filesSize(t, filepath.Join(w.Dir, "worker", "compiled"))
	inChild := optionalMetric(t, metrics, "edgefaas_worker_child_compiles_total")
	childPeak := optionalMetric(t, metrics, "edgefaas_worker_compile_child_peak_bytes")
	t.Logf("wasm %d bytes, compiled %.1f MiB on disk; worker peak +%.1f MiB over its fresh %.1f MiB; %d compile(s) in a child, peak %.1f MiB",
		len(code), mib(compiled), mib(grown), mib(fresh), inChild, mib(childPeak))
	if inChild != 1 {
		t.Errorf("%d modules compiled in a compile child; the worker compiled one", inChild)
	}
	if grown >= childPeak/2 {
		t.Errorf("the worker's peak grew by %.1f MiB, the compile child's peak was %.1f MiB: the worker holds half the compile's memory or more", mib(grown), mib(childPeak))
	}
}

// status reads a size field of /proc/PID/status (VmRSS, VmHWM), bytes.
func status(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// optionalMetric is metric, or 0 where the worker does not report it.
func optionalMetric(t *testing.T, addr, name string) int64 {
	t.Helper()
	v, _ := lookupMetric(t, addr, name)
	return v
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
