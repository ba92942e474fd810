// Package testcluster starts real edgefaas processes for end-to-end tests:
// the binary built from cmd/edgefaas, a core and workers as separate OS
// processes on 127.0.0.x addresses, each with its own data directory. It
// reads their logs to learn addresses and waits on observable state (the
// core's view of its workers), never on fixed sleeps.
package testcluster

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// release is the binary UseBinary set, if any.
var release string

// UseBinary makes Binary return path until the test ends: a suite that
// runs a release's binaries (one version on every node, as a site runs
// them) starts its core and workers from it. Not for parallel tests.
func UseBinary(t testing.TB, path string) {
	release = path
	t.Cleanup(func() { release = "" })
}

// Binary returns the edgefaas binary (see Build, or UseBinary), failing
// the test if it cannot be had.
func Binary(t testing.TB) string {
	t.Helper()
	if release != "" {
		return release
	}
	bin, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Port returns a TCP port free on host, failing the test if there is none.
func Port(t testing.TB, host string) string {
	t.Helper()
	port, err := FreePort(host)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// Proc is one running edgefaas process of a test: a Process that the test's
// Cleanup kills (showing its log if the test failed).
type Proc struct {
	*Process
	t   testing.TB
	Dir string // data directory
}

// Log returns what the process has written to stderr so far.
func (p *Proc) Log() string { return p.Process.Log.String() }

// WaitLog waits for a log line matching re (within limit) and returns its submatches.
func (p *Proc) WaitLog(re *regexp.Regexp, limit time.Duration) []string {
	p.t.Helper()
	m, err := p.Process.WaitLog(re, 0, limit)
	if err != nil {
		p.t.Fatalf("%v; log:\n%s", err, p.Log())
	}
	return m
}

// Start runs the binary with args, logging to the test on failure.
func Start(t testing.TB, dir string, args ...string) *Proc {
	t.Helper()
	return StartWith(t, nil, dir, args...)
}

// StartWith runs the binary behind a command prefix, e.g. "ip netns exec NS".
func StartWith(t testing.TB, prefix []string, dir string, args ...string) *Proc {
	t.Helper()
	return StartProgram(t, Binary(t), prefix, dir, args...)
}

// StartProgram runs another binary (see BuildProgram) as StartWith runs
// edgefaas.
func StartProgram(t testing.TB, binary string, prefix []string, dir string, args ...string) *Proc {
	t.Helper()
	p := &Proc{t: t, Dir: dir, Process: &Process{
		Binary: binary,
		Args:   args,
		Prefix: prefix,
		Env:    Environ(false, "XDG_CONFIG_HOME="+filepath.Join(dir, "config")),
	}}
	if err := p.Process.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("log of %s:\n%s", strings.Join(args, " "), p.Log())
		}
	})
	return p
}

// Stop sends SIGTERM and waits.
func (p *Proc) Stop() {
	p.Signal(syscall.SIGTERM)
	p.Process.Wait()
}

const restartMark = "----- restart -----"

// Restart starts the process again with the same arguments and data.
func (p *Proc) Restart() {
	p.t.Helper()
	p.Process.Log.Add(restartMark)
	if err := p.Process.Start(); err != nil {
		p.t.Fatal(err)
	}
}

// Signal sends sig to the process (SIGSTOP and SIGCONT simulate a hung peer).
func (p *Proc) Signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// Core is a running core with its API address and tokens.
type Core struct {
	*Proc
	URL      string // http://HOST:PORT
	NodeAddr string // HOST:PORT workers join
	Admin    string
	Guest    string
}

// StartCore starts `edgefaas core` on 127.0.0.1 with a fresh data
// directory and fixed node and API ports (so a restart keeps its addresses).
func StartCore(t testing.TB, extra ...string) *Core {
	t.Helper()
	dir := t.TempDir()
	nodeAddr := "127.0.0.1:" + Port(t, "127.0.0.1")
	httpAddr := "127.0.0.1:" + Port(t, "127.0.0.1")
	args := append([]string{"core", "--data-dir", filepath.Join(dir, "core"), "--http-addr", httpAddr, "--node-addr", nodeAddr}, extra...)
	c := &Core{Proc: Start(t, dir, args...), NodeAddr: nodeAddr}
	c.URL = "http://" + c.WaitLog(ListeningRE, 30*time.Second)[1]
	var err error
	if c.Admin, c.Guest, err = ReadTokens(filepath.Join(dir, "core")); err != nil {
		t.Fatal(err)
	}
	return c
}

// Restart restarts the core on the same data directory and addresses and
// waits until it listens again.
func (c *Core) Restart() {
	c.t.Helper()
	from := c.Process.Log.Len()
	c.Proc.Restart()
	if _, err := c.Process.WaitLog(ListeningRE, from, 30*time.Second); err != nil {
		c.t.Fatalf("core did not listen again after restart: %v\n%s", err, c.Log())
	}
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
// waits until the core lists it. The worker joins as a new site's workers
// do: with a one-time join token for its name (JoinToken), kept as a
// certificate in its data directory for its restarts; with an operator CA
// (--tls-cert in extra) with that CA's certificate and the cookie.
func (c *Core) StartWorker(t testing.TB, host string, extra ...string) *Proc {
	t.Helper()
	dir := t.TempDir()
	args := []string{"worker", "--data-dir", filepath.Join(dir, "worker"),
		"--node-addr", host + ":" + Port(t, host), "--join", c.NodeAddr}
	if slices.Contains(extra, "--tls-cert") {
		args = append(args, "--cookie-file", c.CookieFile())
	} else {
		args = append(args, "--join-token", c.JoinToken(t, "worker@"+host), "--join-api", c.URL)
	}
	w := Start(t, dir, append(args, extra...)...)
	c.WaitWorkers(t, func(ns []client.Node) bool { return has(ns, "worker@"+host) })
	return w
}

// JoinToken is a one-time join token for node (any name when empty),
// created by the admin.
func (c *Core) JoinToken(t testing.TB, node string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	jt, err := c.Client(c.Admin).CreateJoinToken(ctx, 10*time.Minute, node)
	if err != nil {
		t.Fatalf("join token for %q: %v", node, err)
	}
	return jt.Token
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
	var found []client.Node
	err := wait.Until(context.Background(), 30*time.Second, "workers reach the expected state", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ns, err := cl.ListNodes(ctx)
		if err != nil {
			return false
		}
		last = ns
		if cond(ns) {
			found = ns
			return true
		}
		return false
	})
	if err == nil {
		return found
	}
	b, _ := json.Marshal(last)
	t.Fatalf("%v; last: %s\ncore log:\n%s", err, b, c.Log())
	return nil
}

// Invocations is the count of invocations the list reports for a node, -1
// when the node is not listed; with WaitWorkers it waits for traffic on a
// worker.
func Invocations(ns []client.Node, name string) int64 {
	for _, n := range ns {
		if n.Name == name {
			return n.Invocations
		}
	}
	return -1
}

// Metric reads one sample of the core's /metrics (as the admin): the value
// on the line that starts with series and a space, e.g. "go_goroutines" or
// `edgefaas_invocations_total{result="worker_lost"}`; 0 when there is no
// such line (a counter nothing has counted yet).
func (c *Core) Metric(t testing.TB, series string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+c.Admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("metrics: %s: %v", line, err)
			}
			return f
		}
	}
	return 0
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

// NetnsCore is a core started in a network namespace: its nodes listen on
// the namespace's address, its API on 127.0.0.1:4000 inside the namespace,
// where only a client run in the namespace (CLI) reaches it.
type NetnsCore struct {
	*Proc
	ns    Netns
	Admin string
}

// StartCoreIn starts `edgefaas core` in ns with node port 4001 on nodeIP,
// waits until it listens and reads its admin token.
func StartCoreIn(t testing.TB, ns Netns, nodeIP string, extra ...string) *NetnsCore {
	t.Helper()
	dir := t.TempDir()
	coreDir := filepath.Join(dir, "core")
	args := append([]string{"core", "--data-dir", coreDir, "--http-addr", "127.0.0.1:4000", "--node-addr", nodeIP + ":4001"}, extra...)
	c := &NetnsCore{Proc: StartWith(t, ns.Exec(), dir, args...), ns: ns}
	c.WaitLog(ListeningRE, 30*time.Second)
	var err error
	if c.Admin, _, err = ReadTokens(coreDir); err != nil {
		t.Fatal(err)
	}
	return c
}

// CookieFile is the core's node cookie, for workers.
func (c *NetnsCore) CookieFile() string { return filepath.Join(c.Dir, "core", "cookie") }

// CLI is the edgefaas client, run as the admin inside the core's namespace
// with JSON output, ready to run.
func (c *NetnsCore) CLI(ctx context.Context, args ...string) *exec.Cmd {
	c.t.Helper()
	argv := append(c.ns.Exec(), append([]string{Binary(c.t), "-H", "http://127.0.0.1:4000", "--token", c.Admin, "-o", "json"}, args...)...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(c.Dir, "cfg"))
	return cmd
}

// PortNum is Port as a number.
func PortNum(t testing.TB, host string) int {
	t.Helper()
	n, err := strconv.Atoi(Port(t, host))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
