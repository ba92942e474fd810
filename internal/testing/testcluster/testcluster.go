// Package testcluster starts real edgefaas processes for end-to-end tests:
// the binary built from cmd/edgefaas, a core and workers as separate OS
// processes on 127.0.0.x addresses, each with its own data directory. It
// reads their logs to learn addresses and waits on observable state (the
// core's view of its workers), never on fixed sleeps.
package testcluster

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// Binary builds cmd/edgefaas once per test binary and returns its path.
func Binary(t testing.TB) string {
	t.Helper()
	root := testmodules.Root(t)
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "edgefaas-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "edgefaas")
		cmd := exec.Command("go", "build", "-o", binary, "./cmd/edgefaas")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// Proc is one running edgefaas process.
type Proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	prefix []string // e.g. ip netns exec NS
	args   []string
	Dir    string // data directory
	log    *logBuffer
	done   chan struct{}
}

type logBuffer struct {
	mu    sync.Mutex
	lines []string
	cond  *sync.Cond
}

func newLog() *logBuffer {
	b := &logBuffer{}
	b.cond = sync.NewCond(&b.mu)
	return b
}

func (b *logBuffer) add(line string) {
	b.mu.Lock()
	b.lines = append(b.lines, line)
	b.mu.Unlock()
	b.cond.Broadcast()
}

// Log returns what the process has written to stderr so far.
func (p *Proc) Log() string {
	p.log.mu.Lock()
	defer p.log.mu.Unlock()
	return strings.Join(p.log.lines, "\n")
}

// WaitLog waits for a log line matching re (within limit) and returns its submatches.
func (p *Proc) WaitLog(re *regexp.Regexp, limit time.Duration) []string {
	p.t.Helper()
	deadline := time.Now().Add(limit)
	timer := time.AfterFunc(limit, p.log.cond.Broadcast)
	defer timer.Stop()
	p.log.mu.Lock()
	defer p.log.mu.Unlock()
	for i := 0; ; {
		for ; i < len(p.log.lines); i++ {
			if m := re.FindStringSubmatch(p.log.lines[i]); m != nil {
				return m
			}
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("no log line matching %s within %s; log:\n%s", re, limit, strings.Join(p.log.lines, "\n"))
		}
		p.log.cond.Wait()
	}
}

// Start runs the binary with args, logging to the test on failure.
func Start(t testing.TB, dir string, args ...string) *Proc {
	t.Helper()
	return StartWith(t, nil, dir, args...)
}

// StartWith runs the binary behind a command prefix, e.g. "ip netns exec NS".
func StartWith(t testing.TB, prefix []string, dir string, args ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, prefix: prefix, args: args, Dir: dir}
	p.start()
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("log of %s:\n%s", strings.Join(args, " "), p.Log())
		}
	})
	return p
}

func (p *Proc) start() {
	p.t.Helper()
	argv := append(append(append([]string{}, p.prefix...), Binary(p.t)), p.args...)
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(p.Dir, "config"))
	// A test binary that dies (a timeout panics past every Cleanup) takes
	// its nodes with it, instead of leaving them running, holding their
	// ports and a CPU, under the tests that follow.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		p.t.Fatal(err)
	}
	p.cmd.Stdout = io.Discard
	if p.log == nil {
		p.log = newLog()
	}
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func(done chan struct{}) {
		s := bufio.NewScanner(stderr)
		s.Buffer(make([]byte, 1<<20), 1<<20)
		for s.Scan() {
			p.log.add(s.Text())
		}
		p.cmd.Wait()
		close(done)
	}(p.done)
}

// Kill sends SIGKILL and waits for the process to end.
func (p *Proc) Kill() {
	if p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// Stop sends SIGTERM and waits.
func (p *Proc) Stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
}

// Restart starts the process again with the same arguments and data.
func (p *Proc) Restart() {
	p.log.add("----- restart -----")
	p.start()
}

// Core is a running core with its API address and tokens.
type Core struct {
	*Proc
	URL      string // http://HOST:PORT
	NodeAddr string // HOST:PORT workers join
	Admin    string
	Guest    string
}

// ListeningRE matches the core's "listening" log line; its group is the API address.
var ListeningRE = regexp.MustCompile(`msg="core listening" addr=(\S+)`)

var listening = ListeningRE

// StartCore starts `edgefaas core` on 127.0.0.1 with a fresh data
// directory and a fixed node port (so a restart keeps its address).
func StartCore(t testing.TB, extra ...string) *Core {
	t.Helper()
	dir := t.TempDir()
	nodeAddr := "127.0.0.1:" + freePort(t, "127.0.0.1")
	httpAddr := "127.0.0.1:" + freePort(t, "127.0.0.1")
	args := append([]string{"core", "--data-dir", filepath.Join(dir, "core"), "--http-addr", httpAddr, "--node-addr", nodeAddr}, extra...)
	c := &Core{Proc: Start(t, dir, args...), NodeAddr: nodeAddr}
	c.URL = "http://" + c.WaitLog(listening, 30*time.Second)[1]
	c.readTokens()
	return c
}

func (c *Core) readTokens() {
	b, err := os.ReadFile(filepath.Join(c.Dir, "core", "tokens"))
	if err != nil {
		c.t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Admin="); ok {
			c.Admin = v
		}
		if v, ok := strings.CutPrefix(line, "Guest="); ok {
			c.Guest = v
		}
	}
}

// Restart restarts the core on the same data directory and addresses and
// waits until it listens again.
func (c *Core) Restart() {
	c.Proc.Restart()
	c.waitAfterRestart(listening)
}

func (c *Core) waitAfterRestart(re *regexp.Regexp) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		log := c.Log()
		i := strings.LastIndex(log, "----- restart -----")
		if re.MatchString(log[i:]) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatalf("core did not listen again after restart:\n%s", c.Log())
}

// CookieFile is the core's node cookie, for workers.
func (c *Core) CookieFile() string { return filepath.Join(c.Dir, "core", "cookie") }

// Client returns an API client with token.
func (c *Core) Client(token string) *client.Client {
	cl, err := client.New(c.URL, token)
	if err != nil {
		c.t.Fatal(err)
	}
	return cl
}

// StartWorker starts `edgefaas worker` on host (e.g. 127.0.0.2) joined to
// the core, with a fixed node port so a restart keeps its address, and
// waits until the core lists it.
func (c *Core) StartWorker(t testing.TB, host string, extra ...string) *Proc {
	t.Helper()
	dir := t.TempDir()
	args := append([]string{"worker", "--data-dir", filepath.Join(dir, "worker"),
		"--node-addr", host + ":" + freePort(t, host), "--join", c.NodeAddr,
		"--cookie-file", c.CookieFile()}, extra...)
	w := Start(t, dir, args...)
	c.WaitWorkers(t, func(ns []client.Node) bool { return has(ns, "worker@"+host) })
	return w
}

func has(ns []client.Node, name string) bool {
	for _, n := range ns {
		if n.Name == name {
			return true
		}
	}
	return false
}

// Has reports whether the list names a node.
func Has(ns []client.Node, name string) bool { return has(ns, name) }

// WaitWorkers polls GET /v1/nodes until cond holds (30 s at most).
func (c *Core) WaitWorkers(t testing.TB, cond func([]client.Node) bool) []client.Node {
	t.Helper()
	cl := c.Client(c.Admin)
	var last []client.Node
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		ns, err := cl.ListNodes(ctx)
		cancel()
		if err == nil {
			last = ns
			if cond(ns) {
				return ns
			}
		}
	}
	b, _ := json.Marshal(last)
	t.Fatalf("workers never reached the expected state; last: %s\ncore log:\n%s", b, c.Log())
	return nil
}

func freePort(t testing.TB, host string) string {
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatalf("listen on %s: %v", host, err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// Netns is a network namespace made by a test and removed at its end, for
// tests of what crosses a network: nothing leaves the namespaces the test
// creates.
type Netns string

// NewNetns creates a namespace (skipping the test, with the reason, where
// namespaces cannot be made: not root, no iproute2).
func NewNetns(t testing.TB, name string) Netns {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("skipped: network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: iproute2's ip is not installed (make deps installs it)")
	}
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot create a network namespace: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	return Netns(name)
}

// IP runs `ip -n NS args...`.
func (n Netns) IP(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", append([]string{"-n", string(n)}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("ip -n %s %v: %v\n%s", n, args, err, out)
	}
}

// Exec is the command prefix that runs a program inside the namespace.
func (n Netns) Exec() []string { return []string{"ip", "netns", "exec", string(n)} }

// Link joins two namespaces with a veth pair named devA/devB and gives
// them the addresses (CIDR) and a multicast route.
func Link(t testing.TB, a Netns, devA, addrA string, b Netns, devB, addrB string) {
	t.Helper()
	if out, err := exec.Command("ip", "link", "add", devA, "netns", string(a), "type", "veth", "peer", "name", devB, "netns", string(b)).CombinedOutput(); err != nil {
		t.Fatalf("veth: %v %s", err, out)
	}
	for _, c := range []struct {
		ns        Netns
		dev, addr string
	}{{a, devA, addrA}, {b, devB, addrB}} {
		c.ns.IP(t, "link", "set", "lo", "up")
		c.ns.IP(t, "addr", "add", c.addr, "dev", c.dev)
		c.ns.IP(t, "link", "set", c.dev, "up", "multicast", "on")
		c.ns.IP(t, "route", "add", "224.0.0.0/4", "dev", c.dev)
	}
}

// Signal sends sig to the process (SIGSTOP and SIGCONT simulate a hung peer).
func (p *Proc) Signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}
