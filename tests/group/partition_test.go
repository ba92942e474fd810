package group_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// long runs the group's long tests (make reliability).
var long = flag.Bool("group.long", false, "run the core group's long tests: a partition in network namespaces, a longer stream through more leader kills")

// nsDialer dials from inside the network namespace ns: the socket is
// made by a thread moved into it and back. The thread is not left to end
// in the namespace: a thread that ends sends its children's parent-death
// signal (the test's processes are started with one), so the thread
// returns to its namespace and goes on.
func nsDialer(ns testcluster.Netns) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type result struct {
			c   net.Conn
			err error
		}
		ch := make(chan result, 1)
		go func() {
			runtime.LockOSThread()
			home, err := os.Open("/proc/thread-self/ns/net")
			if err != nil {
				runtime.UnlockOSThread()
				ch <- result{nil, err}
				return
			}
			defer home.Close()
			f, err := os.Open(filepath.Join("/var/run/netns", string(ns)))
			if err != nil {
				runtime.UnlockOSThread()
				ch <- result{nil, err}
				return
			}
			defer f.Close()
			if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
				runtime.UnlockOSThread()
				ch <- result{nil, fmt.Errorf("enter namespace %s: %w", ns, err)}
				return
			}
			c, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, addr)
			if unix.Setns(int(home.Fd()), unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread() // back home: the thread may run anything
			} // else the thread stays locked and ends with this goroutine
			ch <- result{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

// nsCore is a core of the partition test, in a namespace of its own.
type nsCore struct {
	*testcluster.Proc
	ns        testcluster.Netns
	ip        string
	groupAddr string
	cl        *client.Client
}

// TestPartitionedLeader: three cores, each in a network namespace of its
// own joined to the others by a bridge, each with a worker beside it.
// The leader's link is cut: the other two elect a leader and take writes;
// the isolated core refuses writes (503) and still invokes. The link
// comes back: the isolated core converges (same applied index, same
// functions).
func TestPartitionedLeader(t *testing.T) {
	if !*long {
		t.Skip("a long test: make reliability (-group.long)")
	}
	tag := fmt.Sprintf("efg%d", os.Getpid()%100000)
	sw := testcluster.NewNetns(t, tag+"sw")
	sw.IP(t, "link", "add", "br0", "type", "bridge")
	sw.IP(t, "link", "set", "br0", "up")
	disk := dataDisk(t)
	var cores []*nsCore
	var cookie, admin string
	for i := 1; i <= 3; i++ {
		ns := testcluster.NewNetns(t, fmt.Sprintf("%sn%d", tag, i))
		ip := fmt.Sprintf("10.77.0.%d", i)
		port := fmt.Sprintf("p%d", i)
		if out, err := exec.Command("ip", "link", "add", "eth0", "netns", string(ns), "type", "veth", "peer", "name", port, "netns", string(sw)).CombinedOutput(); err != nil {
			t.Fatalf("veth: %v %s", err, out)
		}
		ns.IP(t, "link", "set", "lo", "up")
		ns.IP(t, "addr", "add", ip+"/24", "dev", "eth0")
		ns.IP(t, "link", "set", "eth0", "up")
		sw.IP(t, "link", "set", port, "master", "br0")
		sw.IP(t, "link", "set", port, "up")
		dir := t.TempDir()
		data := filepath.Join(disk, ip, "core")
		args := []string{"core", "--data-dir", data, "--http-addr", ip + ":4000", "--http-tls", "off",
			"--node-addr", ip + ":4001", "--group-addr", ip + ":4002"}
		if i > 1 {
			args = append(args, "--join-group", "10.77.0.1:4002", "--cookie-file", cookie)
		}
		c := &nsCore{Proc: testcluster.StartWith(t, ns.Exec(), dir, args...), ns: ns, ip: ip, groupAddr: ip + ":4002"}
		c.WaitLog(testcluster.ListeningRE, 60*time.Second)
		if i == 1 {
			cookie = filepath.Join(data, "cookie")
			var err error
			if admin, _, err = testcluster.ReadTokens(data); err != nil {
				t.Fatal(err)
			}
		}
		cl, err := client.New("http://"+ip+":4000", admin)
		if err != nil {
			t.Fatal(err)
		}
		cl.HTTP.Transport.(*http.Transport).DialContext = nsDialer(ns)
		c.cl = cl
		cores = append(cores, c)
		// A worker beside each core, joined to it.
		wdir := t.TempDir()
		testcluster.StartWith(t, ns.Exec(), wdir, "worker", "--data-dir", filepath.Join(wdir, "worker"),
			"--node-addr", ip+":4011", "--join", ip+":4001", "--cookie-file", cookie)
	}
	for _, c := range cores {
		wait.ForState(t, 60*time.Second, c.ip+" holds the group's subjects and a worker", func() (bool, string) {
			ns, err := c.cl.ListNodes(ctxT(t, 5*time.Second))
			return err == nil && len(ns) == 1, fmt.Sprint(ns, err)
		})
	}
	leader := func(among []*nsCore) *nsCore {
		var found *nsCore
		wait.For(t, 30*time.Second, "a leader", func() bool {
			for _, c := range among {
				ms := leadsRE.FindAllStringSubmatch(c.Log(), -1)
				if len(ms) > 0 && ms[len(ms)-1][1] == "leads" {
					found = c
					return true
				}
			}
			return false
		})
		return found
	}
	lead := leader(cores)
	code := testmodules.Read(t, "hello")
	if err := lead.cl.CreateModule(ctxT(t, 30*time.Second), "demo"); err != nil {
		t.Fatal(err)
	}
	if err := create(ctxT(t, 60*time.Second), lead.cl, "hello", code); err != nil {
		t.Fatal(err)
	}
	for _, c := range cores {
		wait.ForState(t, 60*time.Second, "hello answers through "+c.ip, func() (bool, string) {
			_, err := c.cl.Invoke(ctxT(t, 30*time.Second), "demo", "hello", json.RawMessage(`{"name":"x"}`))
			return err == nil, fmt.Sprint(err)
		})
	}

	// Cut the leader's link.
	var port string
	var rest []*nsCore
	for i, c := range cores {
		if c == lead {
			port = fmt.Sprintf("p%d", i+1)
		} else {
			rest = append(rest, c)
		}
	}
	sw.IP(t, "link", "set", port, "down")
	cut := time.Now()
	// The majority takes a write again.
	var elected time.Duration
	wait.ForState(t, 30*time.Second, "the majority to take a write", func() (bool, string) {
		err := create(ctxT(t, 30*time.Second), rest[0].cl, "majority", code)
		if err == nil || client.IsStatus(err, http.StatusConflict) {
			if elected == 0 {
				elected = time.Since(cut)
			}
			return true, ""
		}
		return false, err.Error()
	})
	next := leader(rest)
	// The isolated core refuses writes and still invokes.
	wait.ForState(t, 30*time.Second, "the isolated core to refuse a write with 503", func() (bool, string) {
		err := create(ctxT(t, 30*time.Second), lead.cl, "isolated", code)
		return client.IsStatus(err, http.StatusServiceUnavailable), fmt.Sprint(err)
	})
	if out, err := lead.cl.Invoke(ctxT(t, 30*time.Second), "demo", "hello", json.RawMessage(`{"name":"cut"}`)); err != nil || string(out) != `{"message":"Hello, cut!"}` {
		t.Fatalf("the isolated core invokes: %s %v", out, err)
	}
	t.Logf("leader %s cut off; %s leads; the majority took a write %v after the cut", lead.ip, next.ip, elected.Round(100*time.Millisecond))

	// Heal: the isolated core converges.
	sw.IP(t, "link", "set", port, "up")
	wait.ForState(t, 60*time.Second, "every core at one applied index with the same functions", func() (bool, string) {
		var applied []uint64
		var fns []string
		for _, c := range cores {
			ms, err := c.cl.GroupMembers(ctxT(t, 10*time.Second))
			if err != nil {
				return false, err.Error()
			}
			for _, m := range ms {
				if m.Self {
					applied = append(applied, m.AppliedIndex)
				}
			}
			mod, err := c.cl.GetModule(ctxT(t, 10*time.Second), "demo")
			if err != nil {
				return false, err.Error()
			}
			fns = append(fns, fmt.Sprint(mod.Functions))
		}
		same := len(applied) == 3 && applied[0] == applied[1] && applied[1] == applied[2] && fns[0] == fns[1] && fns[1] == fns[2]
		return same, fmt.Sprintf("applied %v, functions %v", applied, fns)
	})
	if _, err := lead.cl.GetFunction(ctxT(t, 10*time.Second), "demo", "majority"); err != nil {
		t.Fatalf("the healed core lacks the majority's write: %v", err)
	}
}
