package budget

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

// TestGoFunctionCodeMappedFromCache: a Go function costs a worker little
// more than its decoded module. A core and a worker run as separate
// processes; the Go hello is uploaded (compiled on the worker before the
// answer) and called once. Then the worker runs its machine code from a
// read-execute mapping of the compile cache's file (file-backed: the
// kernel drops and reads back its pages), holds no anonymous executable
// copy of it, and its anonymous memory grew by less than twice the
// compiled code's size: the compiler's working set went back to the OS.
func TestGoFunctionCodeMappedFromCache(t *testing.T) {
	code := testmodules.Read(t, "hello")
	core := testcluster.StartCore(t)
	w := core.StartWorker(t, "127.0.0.2")
	usr := core.Client(core.Guest)
	before := anonymous(t, w.Pid())

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if _, err := usr.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: "hello", Code: code, WaitForWorkers: new(true)}); err != nil {
		t.Fatalf("upload: %v", err)
	}
	out, err := usr.Invoke(ctx, client.DefaultModule, "hello", []byte(`{"name":"edge"}`))
	if err != nil || !strings.Contains(string(out), "Hello, edge!") {
		t.Fatalf("invoke: %q, %v", out, err)
	}
	grown := anonymous(t, w.Pid()) - before

	cacheDir := filepath.Join(w.Dir, "worker", "compiled")
	compiled := filesSize(t, cacheDir)
	if compiled < int64(len(code)) {
		t.Fatalf("the compile cache holds %d bytes for %d bytes of wasm", compiled, len(code))
	}
	fromCache, anonExec := codeMappings(t, w.Pid(), cacheDir)
	t.Logf("wasm %d bytes, compiled %d bytes on disk; mapped from the cache %d bytes, anonymous executable %d bytes; anonymous memory +%d bytes",
		len(code), compiled, fromCache, anonExec, grown)
	if fromCache < compiled*9/10 {
		t.Errorf("%d bytes of code mapped read-execute from %s, whose files hold %d", fromCache, cacheDir, compiled)
	}
	if anonExec > compiled/4 {
		t.Errorf("%d bytes of anonymous executable memory: the machine code (%d bytes on disk) is kept anonymous", anonExec, compiled)
	}
	if grown > 2*compiled {
		t.Errorf("the worker's anonymous memory grew by %d bytes after the upload and a call; the compiled code is %d bytes", grown, compiled)
	}
}

// TestWarmGoInstancesShareTheirData: an additional warm Go instance costs
// the worker less than 3 MiB of memory that only it holds. The Go sleep
// function is called once (one warm instance), then by 8 calls at once
// (each sleeping 2 s, so they overlap: the live instances are counted). Each
// instance maps its module's data image copy-on-write (one mapping of the
// image file per instance in /proc/PID/maps) and the worker's anonymous
// memory grows by less than 3 MiB per additional instance, and by less than
// half the linear memory each one committed: the pages a Go guest only
// reads (most of its data segments) stay one shared copy.
func TestWarmGoInstancesShareTheirData(t *testing.T) {
	code := testmodules.Read(t, "sleep")
	core := testcluster.StartCore(t)
	metrics := "127.0.0.2:" + testcluster.Port(t, "127.0.0.2")
	w := core.StartWorker(t, "127.0.0.2", "--metrics-addr", metrics, "--public-metrics")
	usr := core.Client(core.Guest)
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	if _, err := usr.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: "sleep", Code: code, WaitForWorkers: new(true)}); err != nil {
		t.Fatalf("upload: %v", err)
	}
	call := func(ms int) error {
		out, err := usr.Invoke(ctx, client.DefaultModule, "sleep", fmt.Appendf(nil, `{"ms":%d}`, ms))
		if err == nil && !strings.Contains(string(out), "Slept") {
			err = fmt.Errorf("answer %q", out)
		}
		return err
	}
	if err := call(0); err != nil {
		t.Fatalf("first call: %v", err)
	}
	one, oneLive, oneLinear := anonymous(t, w.Pid()), metric(t, metrics, "edgefaas_worker_instances_live"), metric(t, metrics, "edgefaas_worker_linear_memory_bytes")

	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- call(2000)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("call: %v", err)
		}
	}
	all, live, linear := anonymous(t, w.Pid()), metric(t, metrics, "edgefaas_worker_instances_live"), metric(t, metrics, "edgefaas_worker_linear_memory_bytes")
	images := int64(imageMappings(t, w.Pid()))
	if oneLive != 1 || live < 4 {
		t.Fatalf("%d warm instances after one call, %d after %d calls at once", oneLive, live, n)
	}
	per := (all - one) / (live - oneLive)
	perLinear := (linear - oneLinear) / (live - oneLive)
	t.Logf("anonymous memory: %.1f MiB with %d warm instance, %.1f MiB with %d: %.2f MiB per additional instance, which committed %.2f MiB of linear memory; %d mappings of a data image",
		float64(one)/(1<<20), oneLive, float64(all)/(1<<20), live, float64(per)/(1<<20), float64(perLinear)/(1<<20), images)
	if images < live {
		t.Errorf("%d instances live, %d mappings of a data image in the worker", live, images)
	}
	if per >= 3<<20 {
		t.Errorf("each additional warm Go instance holds %.2f MiB of anonymous memory (bound: 3 MiB)", float64(per)/(1<<20))
	}
	if per >= perLinear/2 {
		t.Errorf("each additional warm Go instance holds %.2f MiB of anonymous memory, more than half the %.2f MiB of linear memory it committed", float64(per)/(1<<20), float64(perLinear)/(1<<20))
	}
}

// metric reads an unlabelled sample from the worker's metrics.
func metric(t *testing.T, addr, name string) int64 {
	t.Helper()
	v, ok := lookupMetric(t, addr, name)
	if !ok {
		t.Fatalf("no %s in %s/metrics", name, addr)
	}
	return v
}

// lookupMetric is metric, false where the worker does not report it.
func lookupMetric(t *testing.T, addr, name string) (int64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatal(err)
			}
			return int64(f), true
		}
	}
	return 0, false
}

// imageMappings counts the mappings of a data image file (unlinked,
// named .data-image-*) in /proc/PID/maps.
func imageMappings(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/maps")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, "/.data-image-") {
			n++
		}
	}
	return n
}

// anonymous is a process's anonymous resident memory (smaps_rollup).
func anonymous(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Anonymous:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no Anonymous line in /proc/%d/smaps_rollup", pid)
	return 0
}

// codeMappings sums, from /proc/PID/maps, the sizes of the read-execute
// mappings of files under dir and of anonymous read-execute mappings.
func codeMappings(t *testing.T, pid int, dir string) (fromDir, anonExec int64) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/maps")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 || f[1] != "r-xp" {
			continue
		}
		lo, hi, _ := strings.Cut(f[0], "-")
		a, _ := strconv.ParseUint(lo, 16, 64)
		z, _ := strconv.ParseUint(hi, 16, 64)
		switch {
		case len(f) >= 6 && strings.HasPrefix(f[5], dir+"/"):
			fromDir += int64(z - a)
		case len(f) == 5 || f[5] == "":
			anonExec += int64(z - a)
		}
	}
	return fromDir, anonExec
}

// filesSize is the total size of the regular files under dir.
func filesSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
