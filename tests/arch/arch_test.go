// Package arch_test checks what `make dist` ships (archives, the Debian
// package installed, upgraded and purged, the OCI image run) and proves
// the platform is heterogeneous: `make dist` cross-compiles static
// binaries for linux/amd64, arm64 and arm v7 into its release archives, and
// the arm64 and arm worker binaries, run under qemu-user-static, join a
// native amd64 core and run the same .wasm with the same results as a
// native worker.
package arch_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

const testVersion = "v0.0.0-archtest"

var (
	distOnce sync.Once
	distDir  string
	distOut  string
	distErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if distDir != "" {
		os.RemoveAll(distDir)
	}
	os.Exit(code)
}

// distPlatforms is what the tests build of the release: every linux
// architecture (the platform, run under qemu) and one client per other
// OS, which is what can break there (build tags, system calls); the other
// architectures of those OSes add only minutes of cross-compiling.
const distPlatforms = "linux/amd64 linux/arm64 linux/arm/v7 darwin/arm64 windows/amd64"

// dist runs scripts/dist.sh (what `make dist` runs) once into a temporary
// directory, for distPlatforms, and returns it.
func dist(t *testing.T) string {
	t.Helper()
	root := testmodules.Root(t)
	distOnce.Do(func() {
		distDir, distErr = os.MkdirTemp("", "edgefaas-dist-")
		if distErr != nil {
			return
		}
		cmd := exec.Command("bash", "scripts/dist.sh")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "DIST_DIR="+distDir, "VERSION="+testVersion, "DIST_PLATFORMS="+distPlatforms)
		out, err := cmd.CombinedOutput()
		distOut = string(out)
		if err != nil {
			distErr = fmt.Errorf("scripts/dist.sh: %v\n%s", err, out)
			return
		}
		// The tests run the binaries the release archives hold.
		for _, arch := range []string{"amd64", "arm64", "armv7"} {
			if distErr = unpack(filepath.Join(distDir, "edgefaas-"+testVersion+"-linux-"+arch+".tar.gz"),
				"edgefaas-"+testVersion+"-linux-"+arch+"/edgefaas", filepath.Join(distDir, "edgefaas-linux-"+arch)); distErr != nil {
				return
			}
		}
	})
	if distErr != nil {
		t.Fatal(distErr)
	}
	return distDir
}

// eachInTarGz calls fn with each entry of the gzipped tar at path, its
// content readable from r, until fn returns stop or an error.
func eachInTarGz(path string, fn func(h *tar.Header, r io.Reader) (stop bool, err error)) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		stop, err := fn(h, tr)
		if err != nil {
			return fmt.Errorf("%s: %s: %w", path, h.Name, err)
		}
		if stop {
			return nil
		}
	}
}

// unpack writes the file name of the .tar.gz archive to dst, executable.
func unpack(archive, name, dst string) error {
	found := false
	err := eachInTarGz(archive, func(h *tar.Header, r io.Reader) (bool, error) {
		if h.Name != name {
			return false, nil
		}
		found = true
		return true, writeFile(dst, r, 0o755)
	})
	if err == nil && !found {
		err = fmt.Errorf("%s: no %s", archive, name)
	}
	return err
}

// writeFile writes r to path with mode.
func writeFile(path string, r io.Reader, mode os.FileMode) error {
	out, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, r); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// TestDist checks each binary of `make dist`: its ELF machine, that it is
// statically linked (no interpreter, no shared libraries), and that the
// version is stamped in.
func TestDist(t *testing.T) {
	dir := dist(t)
	t.Logf("scripts/dist.sh:\n%s", distOut)
	for _, c := range []struct {
		file    string
		machine elf.Machine
		class   elf.Class
	}{
		{"edgefaas-linux-amd64", elf.EM_X86_64, elf.ELFCLASS64},
		{"edgefaas-linux-arm64", elf.EM_AARCH64, elf.ELFCLASS64},
		{"edgefaas-linux-armv7", elf.EM_ARM, elf.ELFCLASS32},
	} {
		path := filepath.Join(dir, c.file)
		f, err := elf.Open(path)
		if err != nil {
			t.Errorf("%s: %v", c.file, err)
			continue
		}
		if f.Machine != c.machine || f.Class != c.class || f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX {
			t.Errorf("%s: machine %v class %v abi %v, want %v %v", c.file, f.Machine, f.Class, f.OSABI, c.machine, c.class)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s: has a program interpreter: not static (CGO on?)", c.file)
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("%s: needs shared libraries %v", c.file, libs)
		}
		if f.Section(".symtab") != nil {
			t.Errorf("%s: not stripped (-s -w missing)", c.file)
		}
		f.Close()
	}
	// SHA256SUMS names every archive and package, each with its sum.
	sums, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Errorf("SHA256SUMS line %q", line)
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("SHA256SUMS names %s: %v", name, err)
			continue
		}
		if got := fmt.Sprintf("%x", sha256.Sum256(b)); got != sum {
			t.Errorf("SHA256SUMS: %s is %s, listed %s", name, got, sum)
		}
		listed[name] = true
	}
	for _, name := range []string{
		"edgefaas-" + testVersion + "-linux-amd64.tar.gz", "edgefaas-" + testVersion + "-linux-arm64.tar.gz",
		"edgefaas-" + testVersion + "-linux-armv7.tar.gz", "edgefaas-" + testVersion + "-windows-amd64.zip",
		"edgefaas-" + testVersion + "-darwin-arm64.tar.gz",
		"edgefaas_0.0.0+archtest_amd64.deb", "edgefaas_0.0.0+archtest_arm64.deb", "edgefaas_0.0.0+archtest_armhf.deb",
		"edgefaas-" + testVersion + "-oci.tar",
	} {
		if !listed[name] {
			t.Errorf("SHA256SUMS does not list %s", name)
		}
	}
	out, err := exec.Command(filepath.Join(dir, "edgefaas-linux-amd64"), "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), testVersion) {
		t.Errorf("edgefaas --version = %q, %v; want the stamped %s", out, err, testVersion)
	}
}

// qemu makes sure qemu-user-static is installed (scripts/install-qemu.sh)
// or skips the test with the reason.
func qemu(t *testing.T) {
	t.Helper()
	cmd := exec.Command("bash", "scripts/install-qemu.sh")
	cmd.Dir = testmodules.Root(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("qemu-user-static is not available, cannot run the arm binaries: %v: %s", err, bytes.TrimSpace(out))
	}
}

// emulated is a worker binary of another architecture run under qemu.
type emulated struct {
	cmd  *exec.Cmd
	dir  string
	tag  string
	log  string
	done chan struct{}
}

func (w *emulated) exited() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

func (w *emulated) logText() string {
	b, _ := os.ReadFile(w.log)
	return string(b)
}

func startEmulated(t *testing.T, core *testcluster.Core, qemuBin, binary, host, tag string) *emulated {
	t.Helper()
	dir := t.TempDir()
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Skipf("cannot listen on %s: %v", host, err)
	}
	addr := l.Addr().String()
	l.Close()
	logPath := filepath.Join(dir, "worker.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	// --memory 512MiB: below 1 GiB a worker compiles in process, not in a
	// child (internal/wasm compileApart). Under qemu-user the child's
	// fork of a many-threaded emulated process can deadlock in qemu
	// itself (seen once: the forked arm worker asleep on a futex with
	// every signal blocked, its call timed out); on the hardware these
	// binaries are for, the child execs like any other.
	cmd := exec.Command(qemuBin, binary, "worker", "--data-dir", filepath.Join(dir, "worker"), "--memory", "512MiB",
		"--node-addr", addr, "--join", core.NodeAddr, "--join-token", core.JoinToken(t, "worker@"+host), "--join-api", core.URL, "--tag", tag)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s %s: %v", qemuBin, binary, err)
	}
	w := &emulated{cmd: cmd, dir: dir, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); logf.Close(); close(w.done) }()
	w.tag = tag
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		<-w.done
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("log of the %s worker:\n%s", tag, b)
		}
	})
	return w
}

// rssKiB reads VmRSS of the process whose command line contains needle
// (the processes testcluster starts do not expose their pids).
func rssKiB(needle string) (int, bool) {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cl, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cl, []byte(needle)) {
			continue
		}
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
				return n, true
			}
		}
	}
	return 0, false
}

type arch struct {
	tag, host string
	qemu      string // "" runs natively
	binary    string
}

// TestHeterogeneity joins an arm64 and an arm v7 worker (under qemu) and a
// native amd64 worker to a native core, uploads the same code once per
// architecture pinned by tag (a JavaScript function among them: its
// engine is Wasm, one build for every architecture), invokes each copy,
// and checks the results are identical and ran where they were pinned. It logs the latency under
// emulation relative to native; it asserts nothing about timing.
func TestHeterogeneity(t *testing.T) {
	if testing.Short() {
		t.Skip("starts qemu-emulated workers; skipped with -short")
	}
	qemu(t)
	dir := dist(t)
	for _, c := range []struct{ qemu, bin string }{{"qemu-aarch64-static", "edgefaas-linux-arm64"}, {"qemu-arm-static", "edgefaas-linux-armv7"}} {
		out, err := exec.Command(c.qemu, filepath.Join(dir, c.bin), "--version").CombinedOutput()
		if err != nil || !strings.Contains(string(out), testVersion) {
			t.Fatalf("%s %s --version = %q, %v", c.qemu, c.bin, out, err)
		}
	}

	archs := []arch{
		{tag: "amd64", host: "127.0.0.4"},
		{tag: "arm64", host: "127.0.0.2", qemu: "qemu-aarch64-static", binary: filepath.Join(dir, "edgefaas-linux-arm64")},
		{tag: "arm", host: "127.0.0.3", qemu: "qemu-arm-static", binary: filepath.Join(dir, "edgefaas-linux-armv7")},
	}
	// Every node runs the release's binary: a core refuses a worker of
	// another build.
	testcluster.UseBinary(t, filepath.Join(dir, "edgefaas-linux-amd64"))
	start := time.Now()
	core := testcluster.StartCore(t)
	nativeWorker := core.StartWorker(t, archs[0].host, "--tag", archs[0].tag)
	workers := map[string]*emulated{}
	for _, a := range archs[1:] {
		workers[a.tag] = startEmulated(t, core, a.qemu, a.binary, a.host, a.tag)
	}
	// Emulated workers start slowly: poll longer than the harness's 30 s,
	// until every worker is listed or has exited.
	cl := core.Client(core.Admin)
	var nodes []client.Node
	var listErr error
	if werr := wait.Until(context.Background(), 2*time.Minute, "the emulated workers join", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ns, err := cl.ListNodes(ctx)
		if listErr = err; err != nil {
			return false
		}
		nodes = ns
		for _, a := range archs {
			if !testcluster.Has(ns, "worker@"+a.host) && !(a.qemu != "" && workers[a.tag].exited()) {
				return false
			}
		}
		return true
	}); werr != nil {
		b, _ := json.Marshal(nodes)
		t.Fatalf("%v: %v %s", werr, listErr, b)
	}
	t.Logf("workers joined %.1f s after the core started", time.Since(start).Seconds())
	byName := map[string]client.Node{}
	for _, n := range nodes {
		byName[n.Name] = n
	}
	var live []arch
	for _, a := range archs {
		n, ok := byName["worker@"+a.host]
		if !ok {
			t.Fatalf("worker@%s (%s) is not listed and exited:\n%s", a.host, a.tag, workers[a.tag].logText())
		}
		if n.Arch != a.tag || n.OS != "linux" || !slices.Contains(n.Tags, a.tag) {
			t.Errorf("worker@%s reports arch %q os %q tags %v; want %s linux [%s]", a.host, n.Arch, n.OS, n.Tags, a.tag, a.tag)
		}
		live = append(live, a)
	}

	// Footprint: idle RSS (the emulated workers' include qemu's own).
	rss := []struct{ what, needle string }{
		{"core (native)", "--data-dir\x00" + filepath.Join(core.Dir, "core") + "\x00"},
		{"worker amd64 (native)", "--data-dir\x00" + filepath.Join(nativeWorker.Dir, "worker") + "\x00"},
	}
	for _, a := range live[1:] {
		rss = append(rss, struct{ what, needle string }{"worker " + a.tag + " (under qemu)", "--data-dir\x00" + filepath.Join(workers[a.tag].dir, "worker") + "\x00"})
	}
	for _, p := range rss {
		if kib, ok := rssKiB(p.needle); ok {
			t.Logf("idle RSS %-26s %6.1f MiB", p.what, float64(kib)/1024)
		}
	}

	guest := core.Client(core.Guest)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	funcs := []struct {
		module, args string
		calls        int
		script       string // a JavaScript function: its script, under examples/
	}{
		{"hello-c", `{"name":"edge"}`, 10, ""},
		{"matrixmult", `{"n":30,"seed":7}`, 3, ""},
		// The JS engine is Wasm too: one build runs on every architecture.
		{"hellojs", `{"name":"edge"}`, 3, "hellojs/hello.js"},
	}
	for _, f := range funcs {
		var code []byte
		file := ""
		if f.script != "" {
			var err error
			if code, err = os.ReadFile(filepath.Join(testmodules.Root(t), "examples", f.script)); err != nil {
				t.Fatal(err)
			}
			file = filepath.Base(f.script)
		} else {
			code = testmodules.Read(t, f.module)
		}
		for _, a := range live {
			t0 := time.Now()
			name := strings.ReplaceAll(f.module, "-", "") + "_" + a.tag
			if _, err := guest.CreateFunction(ctx, "_", client.Upload{Name: name, Code: code, Filename: file, Metadata: &client.Metadata{Tag: a.tag}}); err != nil {
				t.Fatalf("upload %s: %v", name, err)
			}
			t.Logf("upload %-18s (%d bytes) %6.2f s", name, len(code), time.Since(t0).Seconds())
		}
	}

	before := invocations(t, cl)
	native := map[string]time.Duration{}
	for _, f := range funcs {
		var want string
		for _, a := range live {
			name := strings.ReplaceAll(f.module, "-", "") + "_" + a.tag
			// The first call may compile or instantiate; time the others.
			t0 := time.Now()
			first, err := guest.Invoke(ctx, "_", name, json.RawMessage(f.args))
			if err != nil {
				t.Fatalf("invoke %s: %v", name, err)
			}
			firstCall := time.Since(t0)
			var lat []time.Duration
			for range f.calls {
				t0 := time.Now()
				out, err := guest.Invoke(ctx, "_", name, json.RawMessage(f.args))
				if err != nil {
					t.Fatalf("invoke %s: %v", name, err)
				}
				lat = append(lat, time.Since(t0))
				if !bytes.Equal(out, first) {
					t.Errorf("%s: outputs differ between calls: %s vs %s", name, out, first)
				}
			}
			slices.Sort(lat)
			med := lat[len(lat)/2]
			if a.qemu == "" {
				native[f.module] = med
				want = string(first)
			} else if string(first) != want {
				t.Errorf("%s on %s returned %s; native amd64 returned %s", f.module, a.tag, first, want)
			}
			ratio := ""
			if n := native[f.module]; n > 0 {
				ratio = fmt.Sprintf("%6.1fx native", float64(med)/float64(n))
			}
			t.Logf("%-10s on %-5s first call %8.2f ms, median of %2d %8.2f ms %s -> %s", f.module, a.tag,
				float64(firstCall.Microseconds())/1000, f.calls, float64(med.Microseconds())/1000, ratio, first)
		}
	}
	// Workers report their invocation counts periodically: wait for them.
	want := int64(0)
	for _, f := range funcs {
		want += int64(f.calls + 1)
	}
	var after map[string]int64
	wait.Until(context.Background(), 30*time.Second, "every live worker's invocations reported", func() bool {
		after = invocations(t, cl)
		for _, a := range live {
			if after["worker@"+a.host]-before["worker@"+a.host] < want {
				return false
			}
		}
		return true
	})
	for _, a := range live {
		node := "worker@" + a.host
		if got := after[node] - before[node]; got != want {
			t.Errorf("%s (%s) ran %d invocations, want %d: pinning by tag failed", node, a.tag, got, want)
		}
	}
	t.Logf("whole heterogeneity run: %.1f s; wazero compiles to native code on amd64 and arm64 (arm64 code then runs under qemu's translation), and uses its interpreter on 32-bit arm", time.Since(start).Seconds())
}

func invocations(t *testing.T, cl *client.Client) map[string]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ns, err := cl.ListNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int64{}
	for _, n := range ns {
		m[n.Name] = n.Invocations
	}
	return m
}
