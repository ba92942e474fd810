package bench_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/bench"
	"github.com/edgefaas/edgefaas/internal/testing/attacks"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

func TestMain(m *testing.M) {
	bench.MaybeRunNative() // the native baseline server is this binary re-executed
	os.Exit(m.Run())
}

// TestQuick runs the whole suite in --quick mode against a real cluster
// and checks that every section is there and the numbers are sane. It
// asserts no absolute time.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real clusters; skipped with -short")
	}
	// The builds come first: on a machine with a cold build cache they
	// take minutes of the deadline, which bounds the suite alone.
	root := testmodules.Root(t) // builds the examples
	binary := testcluster.Binary(t)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	r, err := bench.Run(ctx, bench.Options{
		Binary:  binary,
		WasmDir: filepath.Join(root, "build", "wasm"),
		Root:    root,
		OutDir:  out,
		Quick:   true,
		Log:     testWriter{t},
	})
	if err != nil {
		t.Fatal(err)
	}
	report, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	if r.TotalErrors != 0 {
		t.Errorf("%d of %d requests failed; report:\n%s", r.TotalErrors, r.Requests, report)
	}
	for _, section := range []string{"| CPU |", "load average at start", "## Summary", "### sleep", "### server-reply",
		"### matrixmult", "### network", "### hello (memory run)", "## Throughput", "## Memory", "## Cold start",
		"## Sustained", "## Artifact sizes", "## Edge budget", "### What a Go function costs a worker", "## Activation records", "## Attacks", "No request failed"} {
		if !strings.Contains(string(report), section) {
			t.Errorf("report lacks %q", section)
		}
	}
	for _, f := range []string{"cdf-sleep.png", "cdf-server-reply.png", "cdf-matrixmult.png", "cdf-network.png",
		"cdf-hello.png", "rss.png", "throughput.png", "sustained-throughput.png", "results.json"} {
		if fi, err := os.Stat(filepath.Join(out, f)); err != nil || fi.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}

	wantTargets := []string{"edgefaas", "single-box", "native", "in-process"}
	if strings.Join(r.Targets, ",") != strings.Join(wantTargets, ",") {
		t.Errorf("targets %v, want %v", r.Targets, wantTargets)
	}
	find := func(target, workload string) (bench.Summary, bool) {
		for _, s := range r.Workloads {
			if s.Target == target && s.Workload == workload {
				return s, true
			}
		}
		return bench.Summary{}, false
	}
	for _, wl := range []string{"sleep", "server-reply", "matrixmult", "network"} {
		for _, tg := range wantTargets {
			s, ok := find(tg, wl)
			if !ok {
				t.Errorf("no %s result for %s", wl, tg)
				continue
			}
			if s.Requests == 0 || s.Errors != 0 || s.P50 <= 0 || s.P50 > s.P99 || s.P99 > s.Max || s.Throughput <= 0 {
				t.Errorf("%s on %s: implausible %+v", wl, tg, s)
			}
		}
		e, _ := find("edgefaas", wl)
		n, _ := find("native", wl)
		i, _ := find("in-process", wl)
		if e.P50/n.P50 <= 0 || e.P50/i.P50 <= 0 {
			t.Errorf("%s: ratios not positive: edgefaas %v native %v in-process %v", wl, e.P50, n.P50, i.P50)
		}
	}
	for _, tr := range r.Throughput {
		if tr.Peak <= 0 || tr.PeakAt < 1 || len(tr.Steps) == 0 {
			t.Errorf("throughput of %s: %+v", tr.Target, tr)
		}
	}
	if len(r.Throughput) != len(wantTargets) {
		t.Errorf("throughput for %d targets, want %d", len(r.Throughput), len(wantTargets))
	}
	if len(r.Memory) < 3 {
		t.Errorf("memory series: %d", len(r.Memory))
	}
	for _, m := range r.Memory {
		if len(m.RSSMiB) < 2 || m.RSSMiB[0] <= 0 {
			t.Errorf("RSS series of %s %s: %v", m.Target, m.Process, m.RSSMiB)
		}
	}
	if len(r.ColdStarts) < 6 {
		t.Errorf("cold starts: %d", len(r.ColdStarts))
	}
	for _, c := range r.ColdStarts {
		if c.Err != "" || c.FirstMS <= 0 {
			t.Errorf("cold start %+v", c)
		}
	}
	if len(r.Sustained) < 2 {
		t.Errorf("sustained slices: %d", len(r.Sustained))
	}
	for _, s := range r.Sustained {
		if s.Summary.Throughput <= 0 || s.CoreMiB <= 0 || s.WorkerMiB <= 0 {
			t.Errorf("sustained slice %+v", s)
		}
	}
	// Every attack of All on the first box, then the full disk on its own.
	if r.Attacks == nil || len(r.Attacks.Rows) != len(attacks.All())+1 || r.Attacks.Rows[len(r.Attacks.Rows)-1].Attack != attacks.FullDisk().Name {
		t.Errorf("attacks section: %+v", r.Attacks)
	} else {
		for _, a := range r.Attacks.Rows {
			if a.Err != "" || a.CalmP99 <= 0 || a.P99 <= 0 || a.Ratio <= 0 || a.OOMKills != 0 || len(a.Answers) == 0 {
				t.Errorf("attack %+v", a)
			}
		}
	}
	if len(r.Artifacts) < 7 {
		t.Errorf("artifacts: %+v", r.Artifacts)
	}
	if t.Failed() {
		t.Logf("report:\n%s", report)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
