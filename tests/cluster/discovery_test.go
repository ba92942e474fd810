package cluster_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestJoinDNS: a worker given only a DNS name (as with a Kubernetes
// headless service) finds the core and runs its functions.
func TestJoinDNS(t *testing.T) {
	core := testcluster.StartCore(t)
	_, port, _ := strings.Cut(core.NodeAddr, ":")
	dir := t.TempDir()
	testcluster.Start(t, dir, "worker", "--data-dir", filepath.Join(dir, "w"), "--node-addr", "127.0.0.2:0",
		"--join-dns", "localhost:"+port, "--join-token", core.JoinToken(t, "worker@127.0.0.2"), "--join-api", core.URL)
	core.WaitWorkers(t, func(ns []client.Node) bool { return testcluster.Has(ns, "worker@127.0.0.2") })
	cl := core.Client(core.Guest)
	upload(t, cl, "_", "hello", "hello-c", nil)
	if got := invoke(t, cl, "_", "hello", `{"name":"dns"}`); got != `{"message":"Hello, dns!"}` {
		t.Fatalf("invoke: %s", got)
	}
}

// TestLANDiscovery: a core and a worker in two network namespaces joined
// by a veth pair find each other by multicast beacon alone (no --join),
// and a function uploaded to the core runs on the worker. The worker
// holds the cookie only (no API to ask a join token of), so the core
// admits cookie certificates: --node-join any.
func TestLANDiscovery(t *testing.T) {
	id := fmt.Sprintf("ef%d", os.Getpid()%100000)
	a, b := testcluster.NewNetns(t, id+"a"), testcluster.NewNetns(t, id+"b")
	// 10.231.0.0/24 exists only on this veth pair, inside the test's namespaces.
	testcluster.Link(t, a, id+"va", "10.231.0.1/24", b, id+"vb", "10.231.0.2/24")

	core := testcluster.StartCoreIn(t, a, "10.231.0.1", "--lan-discovery", id+"va", "--node-join", "any")
	dir := t.TempDir()
	testcluster.StartWith(t, b.Exec(), dir, "worker", "--data-dir", filepath.Join(dir, "worker"),
		"--node-addr", "10.231.0.2:0", "--lan-discovery", id+"vb", "--cookie-file", core.CookieFile())

	// The core's API lives in namespace a: drive it with the CLI there.
	cli := func(args ...string) (string, error) {
		out, err := core.CLI(context.Background(), args...).Output()
		return string(out), err
	}
	if err := wait.Until(context.Background(), 30*time.Second, "the worker joins by discovery", func() bool {
		out, err := cli("node", "list")
		var ns []client.Node
		return err == nil && json.Unmarshal([]byte(out), &ns) == nil && testcluster.Has(ns, "worker@10.231.0.2")
	}); err != nil {
		t.Fatalf("%v; core log:\n%s", err, core.Log())
	}
	if out, err := cli("fn", "create", "hello", testmodules.Path(t, "hello-c")); err != nil {
		t.Fatalf("create: %v %s", err, out)
	}
	out, err := cli("fn", "invoke", "hello", "-a", "name=lan")
	if err != nil || strings.TrimSpace(out) != `{"message":"Hello, lan!"}` {
		t.Fatalf("invoke: %q %v", out, err)
	}
}

// TestNodeConnect: an operator attaches a running worker to a second core
// by its node address; the worker then reports to both and runs the
// second core's functions. Two cores share one cookie and no CA, so both
// admit cookie certificates: --node-join any.
func TestNodeConnect(t *testing.T) {
	first := testcluster.StartCore(t, "--cookie", "7f3a9c1e5b2d8f4a6c0e9b7d3f1a5c8e", "--node-join", "any")
	second := testcluster.StartCore(t, "--cookie", "7f3a9c1e5b2d8f4a6c0e9b7d3f1a5c8e", "--node-name", "core2@127.0.0.1", "--node-join", "any")
	dir := t.TempDir()
	port := testcluster.Port(t, "127.0.0.2")
	testcluster.Start(t, dir, "worker", "--data-dir", filepath.Join(dir, "w"), "--node-addr", "127.0.0.2:"+port,
		"--join", first.NodeAddr, "--cookie", "7f3a9c1e5b2d8f4a6c0e9b7d3f1a5c8e")
	first.WaitWorkers(t, func(ns []client.Node) bool { return testcluster.Has(ns, "worker@127.0.0.2") })

	if _, err := second.Client(second.Admin).ConnectNode(ctx(t), "worker@127.0.0.2:"+port); err != nil {
		t.Fatalf("connect: %v", err)
	}
	second.WaitWorkers(t, func(ns []client.Node) bool { return testcluster.Has(ns, "worker@127.0.0.2") })
	cl := second.Client(second.Guest)
	upload(t, cl, "_", "hello", "hello-c", nil)
	if got := invoke(t, cl, "_", "hello", `{"name":"attached"}`); got != `{"message":"Hello, attached!"}` {
		t.Fatalf("invoke: %s", got)
	}
	// Connecting is an admin's act.
	if _, err := second.Client(second.Guest).ConnectNode(ctx(t), "worker@127.0.0.2:"+port); !client.IsStatus(err, 403) {
		t.Fatalf("guest connect: %v", err)
	}
}
