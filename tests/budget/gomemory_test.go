package budget

import (
	"bufio"
	"context"
	"io/fs"
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
