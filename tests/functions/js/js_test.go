// Package js_test runs JavaScript functions through the real binary: each
// is a script in testdata/, deployed with `edgefaas fn create NAME
// file.js` on a single-box core (core and worker in one process) and
// called over its HTTP API. The engine (internal/jsengine) is built first
// by `make jsengine`, which fails where it cannot be built.
package js_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

var (
	bin  string
	core *testcluster.CoreProcess
)

func TestMain(m *testing.M) {
	os.Exit(testcluster.RunMain(m, "tests/functions/js", setup))
}

func setup(dir string) (func() error, error) {
	root, err := testcluster.Root()
	if err != nil {
		return nil, err
	}
	mk := exec.Command("make", "-s", "jsengine")
	mk.Dir = root
	mk.Env = append(os.Environ(), "JSENGINE_REQUIRED=1")
	if out, err := mk.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("make jsengine: %v\n%s", err, out)
	}
	if bin, err = testcluster.Build(); err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "core")
	p := &testcluster.Process{
		Binary: bin,
		// The worker lets functions reach 127.0.0.2 (TestFetch's server)
		// when they grant it; every other internal address is refused.
		Args: []string{"core", "--data-dir", data, "--http-addr", "127.0.0.1:0", "--node-addr", "127.0.0.1:0", "--with-worker",
			"--allow-net", "127.0.0.2/32", "--egress-allow", "*"},
		Env: testcluster.Environ(true),
	}
	if core, err = testcluster.LaunchCore(p, data, 60*time.Second); err != nil {
		return nil, err
	}
	return func() error {
		if err := core.Stop(30 * time.Second); err != nil {
			return fmt.Errorf("the core did not exit cleanly: %w; log:\n%s", err, core.Log)
		}
		return nil
	}, nil
}

// cli runs the binary as the guest user and returns its output and error.
func cli(t *testing.T, args ...string) (string, error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(testcluster.Environ(true), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"),
		"EDGEFAAS_HOST="+core.URL, "EDGEFAAS_TOKEN="+core.Guest)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("%v: %s", err, strings.TrimSpace(errOut.String()))
	}
	if strings.Contains(errOut.String(), "goroutine ") || strings.Contains(errOut.String(), "panic:") {
		t.Errorf("edgefaas %v printed a Go stack trace:\n%s", args, errOut.String())
	}
	return out.String(), err
}

// deploy creates the function name from testdata/file with the CLI.
func deploy(t *testing.T, name, file string, flags ...string) {
	t.Helper()
	deployPath(t, name, filepath.Join("testdata", file), flags...)
}

// example is the path of a file under examples/.
func example(dir, file string) string { return filepath.Join("..", "..", "..", "examples", dir, file) }

// deployPath creates the function name from the script at path.
func deployPath(t *testing.T, name, path string, flags ...string) {
	t.Helper()
	out, err := cli(t, append([]string{"fn", "create", name, path}, flags...)...)
	if err != nil {
		t.Fatalf("fn create %s %s: %v", name, path, err)
	}
	if !strings.Contains(out, ", js ABI, ") {
		t.Fatalf("fn create %s: %q does not name the js ABI", name, out)
	}
}

// guest is the suite's one API client, made once: its connections are
// reused from call to call. A client per call would leave each of its
// connections open, idle, for the transport's idle timeout.
func guest(t *testing.T) *client.Client {
	t.Helper()
	guestOnce.Do(func() { guestClient, guestErr = client.New(core.URL, core.Guest) })
	if guestErr != nil {
		t.Fatal(guestErr)
	}
	return guestClient
}

var (
	guestOnce   sync.Once
	guestClient *client.Client
	guestErr    error
)

func invoke(t *testing.T, name, args string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := guest(t).Invoke(ctx, client.DefaultModule, name, json.RawMessage(args))
	return string(out), err
}

// record calls name asynchronously and returns its finished record.
func record(t *testing.T, name, args string) client.Activation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := guest(t)
	id, err := c.InvokeAsync(ctx, client.DefaultModule, name, json.RawMessage(args), "")
	if err != nil {
		t.Fatalf("invoke %s: %v", name, err)
	}
	var a client.Activation
	wait.ForState(t, 2*time.Minute, "the activation of "+name+" to finish", func() (bool, string) {
		a, err = c.GetActivation(ctx, id)
		return err == nil && a.Final(), fmt.Sprintf("%+v %v", a, err)
	})
	return a
}

// TestShapes deploys one function of each shape and calls each twice (the
// second call is served by the warm instance, whose script is evaluated).
func TestShapes(t *testing.T) {
	for _, c := range []struct{ name, file, args, want string }{
		{"js_template", "template.js", `{"name":"Ada"}`, `{"message":"Hello, Ada!"}`},
		{"js_openwhisk", "openwhisk.js", `{"text":"to be or not"}`, `{"words":4,"first":"to"}`},
		{"js_esm", "esm.mjs", `{"w":3,"h":4}`, `{"area":12,"unit":"cm"}`},
		{"js_esm_async", "esm_async.mjs", `{"n":5}`, `{"a":10,"b":[20,22]}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			deploy(t, c.name, c.file)
			for i := range 2 {
				out, err := invoke(t, c.name, c.args)
				if err != nil || out != c.want {
					t.Fatalf("call %d: %s, %v; want %s", i, out, err, c.want)
				}
			}
		})
	}
	// The example, as its comment deploys it.
	if _, err := cli(t, "fn", "create", "hellojs", filepath.Join("..", "..", "..", "examples", "hellojs", "hello.js")); err != nil {
		t.Fatal(err)
	}
	if out, err := invoke(t, "hellojs", `{"name":"edge"}`); err != nil || out != `{"message":"Hello, edge!"}` {
		t.Errorf("examples/hellojs: %s, %v", out, err)
	}
	// fn update replaces a JavaScript function's script.
	if _, err := cli(t, "fn", "update", "hellojs", filepath.Join("testdata", "openwhisk.js")); err != nil {
		t.Fatal(err)
	}
	if out, err := invoke(t, "hellojs", `{"text":"x y z"}`); err != nil || out != `{"words":3,"first":"x"}` {
		t.Errorf("hellojs updated to openwhisk.js: %s, %v", out, err)
	}

	// Over the API, a script sent as a .js file is a JavaScript function.
	raw, err := os.ReadFile(filepath.Join("testdata", "openwhisk.js"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := guest(t).CreateFunction(context.Background(), client.DefaultModule, client.Upload{Name: "js_api", Code: raw, Filename: "words.js"})
	if err != nil || f.ABI != "js" {
		t.Fatalf("upload of a .js file over the API: %+v, %v", f, err)
	}
	if out, err := invoke(t, "js_api", `{"text":"a b"}`); err != nil || out != `{"words":2,"first":"a"}` {
		t.Errorf("js_api: %s, %v", out, err)
	}
	out, err := cli(t, "fn", "get", "js_template", "-o", "json")
	f = client.Function{}
	if err != nil || json.Unmarshal([]byte(out), &f) != nil || f.ABI != "js" {
		t.Errorf("fn get js_template: ABI %q (%v):\n%s", f.ABI, err, out)
	}
}

// TestLogs: console.log and console.error lines are the activation's logs.
func TestLogs(t *testing.T) {
	deploy(t, "js_logs", "logs.js")
	a := record(t, "js_logs", `{"n":7}`)
	want := []string{"starting 7", `a warning {"n":7}`, "done"}
	if a.Status != "success" || strings.Join(a.Logs, "\n") != strings.Join(want, "\n") {
		t.Fatalf("record: status %s, logs %q; want %q", a.Status, a.Logs, want)
	}
}

// TestErrors: a thrown error and a rejected Promise are function errors
// whose record keeps the message and the stack.
func TestErrors(t *testing.T) {
	deploy(t, "js_throws", "throws.js")
	deploy(t, "js_rejects", "rejects.mjs")
	if out, err := invoke(t, "js_throws", `{"n":1}`); err != nil || out != `{"n":1}` {
		t.Fatalf("js_throws without throwing: %s, %v", out, err)
	}
	_, err := invoke(t, "js_throws", `{"n":5}`)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 422 || !strings.Contains(ce.Detail, "RangeError: n is too large: 5") {
		t.Fatalf("thrown error: %v", err)
	}
	a := record(t, "js_throws", `{"n":6}`)
	for _, want := range []string{"RangeError: n is too large: 6", "at check (function.js:4)", "at main (function.js:10)"} {
		if !strings.Contains(a.Error, want) {
			t.Errorf("record of a thrown error lacks %q: %q", want, a.Error)
		}
	}
	_, err = invoke(t, "js_rejects", `{"who":"Bob"}`)
	if !errors.As(err, &ce) || ce.Status != 422 || !strings.Contains(ce.Detail, "Error: rejected for Bob") {
		t.Fatalf("rejected Promise: %v", err)
	}
}

// TestSyntaxErrorRefused: a script that does not parse is refused at
// upload (400) with its line and column, and nothing is created.
func TestSyntaxErrorRefused(t *testing.T) {
	_, err := cli(t, "fn", "create", "js_syntax", filepath.Join("testdata", "syntax.js"))
	if err == nil || !strings.Contains(err.Error(), "Bad Request") || !strings.Contains(err.Error(), "syntax error at line 4, column 3") {
		t.Fatalf("upload of a syntax error: %v", err)
	}
	if _, err := cli(t, "fn", "get", "js_syntax"); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("the refused function exists: %v", err)
	}
}

// TestRunaways: an infinite loop is stopped at its timeout and a memory
// hog at its memory limit, output past the limit is refused, and the node
// answers its neighbour throughout and after.
func TestRunaways(t *testing.T) {
	deploy(t, "js_neighbour", "template.js")
	deploy(t, "js_spin", "spin.js", "--timeout", "2s")
	deploy(t, "js_hog", "hog.js", "--memory", "32")
	deploy(t, "js_bigout", "bigout.js")
	sockets := coreSockets(t)

	var wg sync.WaitGroup
	stop := make(chan struct{})
	var neighbourOK, neighbourBad int
	var bad []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			out, err := invoke(t, "js_neighbour", `{"name":"n"}`)
			if err == nil && out == `{"message":"Hello, n!"}` {
				neighbourOK++
			} else {
				neighbourBad++
				bad = append(bad, fmt.Sprintf("%s %v", out, err))
			}
		}
	}()

	_, err := invoke(t, "js_spin", `{}`)
	if err == nil || !strings.Contains(err.Error(), "timed out") && !strings.Contains(err.Error(), "timeout") {
		t.Errorf("infinite loop: %v; want a timeout", err)
	}
	_, err = invoke(t, "js_hog", `{}`)
	if err == nil || !strings.Contains(err.Error(), "memory limit") {
		t.Errorf("memory hog: %v; want the memory limit", err)
	}
	_, err = invoke(t, "js_bigout", `{"mib":7}`)
	if err == nil || !strings.Contains(err.Error(), "output") {
		t.Errorf("7 MiB of output: %v; want the output limit", err)
	}
	if out, err := invoke(t, "js_bigout", `{"mib":0}`); err != nil || out != `""` {
		t.Errorf("js_bigout within its limit: %s, %v", out, err)
	}
	close(stop)
	wg.Wait()
	if neighbourBad > 0 || neighbourOK == 0 {
		t.Errorf("the neighbour got %d answers and %d failures: %q", neighbourOK, neighbourBad, bad)
	}
	// The neighbour's calls share this suite's client: they leave the core
	// a few more sockets, not one per call. Each left open would hold one
	// of the API's connections (idle keep-alive) until the client's idle
	// timeout, and once the API's connection cap is reached a new call
	// waits for one to close, however quickly its function ends.
	if now := coreSockets(t); now > sockets+16 {
		t.Errorf("the core holds %d sockets after the neighbour's %d calls, %d before", now, neighbourOK+neighbourBad, sockets)
	}
	if out, err := invoke(t, "js_neighbour", `{"name":"after"}`); err != nil || out != `{"message":"Hello, after!"}` {
		t.Errorf("after the runaways: %s, %v", out, err)
	}
	select {
	case <-core.Done():
		t.Fatalf("the core exited:\n%s", core.Log.Tail(40))
	default:
	}
}

// coreSockets is the number of sockets the core process holds open.
func coreSockets(t *testing.T) int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", core.Pid())
	fds, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("the core's descriptors: %v", err)
	}
	n := 0
	for _, fd := range fds {
		if target, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil && strings.HasPrefix(target, "socket:") {
			n++
		}
	}
	return n
}

// TestMatrixMult: the paper's matrixMult in JavaScript gives the sum that
// Node.js (V8) computes from the same file, where node is installed.
func TestMatrixMult(t *testing.T) {
	path := example("matrixmultjs", "matrix.js")
	deployPath(t, "matrixmultjs", path)
	out, err := invoke(t, "matrixmultjs", `{"n":100,"seed":42}`)
	var got struct {
		N        int     `json:"n"`
		Checksum float64 `json:"checksum"`
	}
	if err != nil || json.Unmarshal([]byte(out), &got) != nil || got.N != 100 || got.Checksum <= 0 {
		t.Fatalf("matrixmultjs: %s, %v", out, err)
	}
	if _, err := invoke(t, "matrixmultjs", `{"n":0}`); err == nil || !strings.Contains(err.Error(), "RangeError: n must be an integer") {
		t.Errorf("n = 0: %v", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skipf("no node to compare with: %v", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := exec.Command(node, "-e", `process.stdout.write(JSON.stringify(require(process.argv[1]).fl_main({n: 100, seed: 42})))`, abs).Output()
	var want struct{ Checksum float64 }
	if err != nil || json.Unmarshal(b, &want) != nil {
		t.Fatalf("node: %s, %v", b, err)
	}
	if got.Checksum != want.Checksum {
		t.Errorf("checksum %v in edgefaas, %v in node", got.Checksum, want.Checksum)
	}
}

// TestSleepHoldsNoSlot: a function waiting on setTimeout holds no CPU
// slot. Eight concurrent 1 s sleeps on this worker (as many slots as
// CPUs, 2 on the test machine) take less than 2.5 times one sleep
// measured in the same run; holding a slot each they would take 4. A
// sleep past the function's timeout is stopped at it.
func TestSleepHoldsNoSlot(t *testing.T) {
	deployPath(t, "js_sleep", example("sleepjs", "sleep.mjs"))
	deployPath(t, "js_sleep_short", example("sleepjs", "sleep.mjs"), "--timeout", "1s")
	if out, err := invoke(t, "js_sleep", `{"ms":1}`); err != nil || out != `{"slept":1}` { // warm the code
		t.Fatalf("sleep 1 ms: %s, %v", out, err)
	}
	t0 := time.Now()
	if out, err := invoke(t, "js_sleep", `{"ms":1000}`); err != nil || out != `{"slept":1000}` {
		t.Fatalf("sleep 1 s: %s, %v", out, err)
	}
	one := time.Since(t0)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	t0 = time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, err := invoke(t, "js_sleep", `{"ms":1000}`); err != nil || out != `{"slept":1000}` {
				errs <- fmt.Errorf("%s, %v", out, err)
			}
		}()
	}
	wg.Wait()
	all := time.Since(t0)
	close(errs)
	for err := range errs {
		t.Errorf("a concurrent sleep: %v", err)
	}
	t.Logf("one sleep %s; %d at once %s (%.2f×)", one, n, all, float64(all)/float64(one))
	if float64(all) >= 2.5*float64(one) {
		t.Errorf("%d concurrent sleeps took %s, %.2f× one sleep (%s): waiting holds a slot", n, all, float64(all)/float64(one), one)
	}
	if _, err := invoke(t, "js_sleep_short", `{"ms":600000}`); err == nil || !strings.Contains(err.Error(), "timed out") && !strings.Contains(err.Error(), "timeout") {
		t.Errorf("a sleep past the timeout: %v; want a timeout", err)
	}
}

// TestStoredBytecode: the core stores a script with its bytecode, compiled
// at upload, not the script as sent (whose stored form would be \0ejs and
// the source), and the worker runs what it stored; an upload of bytecode
// is refused.
func TestStoredBytecode(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "openwhisk.js"))
	if err != nil {
		t.Fatal(err)
	}
	deploy(t, "js_stored", "openwhisk.js")
	f, err := guest(t).GetFunction(context.Background(), client.DefaultModule, "js_stored")
	if err != nil {
		t.Fatal(err)
	}
	asSent := sha256.Sum256(append([]byte("\x00ejs"), src...))
	if f.ABI != "js" || f.Hash == hex.EncodeToString(asSent[:]) || f.Size <= int64(len(asSent)+len(src)) {
		t.Fatalf("stored %+v: the script as sent (%d bytes), not with its bytecode", f, len(src))
	}
	if out, err := invoke(t, "js_stored", `{"text":"to be"}`); err != nil || out != `{"words":2,"first":"to"}` {
		t.Fatalf("the stored bytecode's call: %q, %v", out, err)
	}
	// Only the core makes bytecode: an upload of the compiled form (magic
	// \0ejc, an engine's ID, the source's length, the source, bytecode)
	// is refused.
	forged := append([]byte("\x00ejc12345678\x03\x00\x00\x00abc"), 0x02, 0xff, 0xff)
	_, err = guest(t).CreateFunction(context.Background(), client.DefaultModule, client.Upload{Name: "js_forged", Code: forged})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 400 || !strings.Contains(ce.Detail, "compiled JavaScript") {
		t.Fatalf("an upload of bytecode: %v", err)
	}
}
