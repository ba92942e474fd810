package adversarial

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/cgroupbox"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestConnectionFlood: the box's open files limit is lowered to 1024 on
// the running process (prlimit), then a client opens more idle
// keep-alive connections to the API than that limit. The API must take
// only what its descriptor reserve allows, so that the store still opens
// its files: the neighbour and a tenant on connections they opened before
// are answered throughout, the tenant's calls commit their records (enough
// of them for the store to flush and open new files), the process does
// not die, and nothing is OOM-killed. Once the flood ends, a new client is
// answered.
func TestConnectionFlood(t *testing.T) {
	const (
		nofile = 1024
		flood  = 1200
		calls  = 80 // 128 KiB records: the store's memtable flushes
	)
	if _, err := exec.LookPath("prlimit"); err != nil {
		t.Skip("prlimit (util-linux) is not installed")
	}
	b := cgroupbox.Start(t, Limit)
	b.WaitNode(t)
	n := newNeighbour(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := b.User.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: "bloat", Code: testmodules.Read(t, "test/ctlbloat")}); err != nil {
		t.Fatalf("upload: %v", err)
	}
	// The tenant's own connection, opened before the flood and kept.
	kept, err := client.New(b.URL, b.Guest)
	if err != nil {
		t.Fatal(err)
	}
	kept.HTTP = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
	if _, err := kept.Invoke(ctx, client.DefaultModule, "bloat", json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	stop := n.During() // its connection is open before the flood too
	pid := b.Proc.Process.Pid()
	if out, err := exec.Command("prlimit", "--pid", fmt.Sprint(pid), fmt.Sprintf("--nofile=%d:%d", nofile, nofile)).CombinedOutput(); err != nil {
		stop()
		t.Skipf("cannot lower the box's open files limit: %v %s", err, out)
	}

	addr := strings.TrimPrefix(b.URL, "http://")
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range flood {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			break // the accept queue is full: the kernel refuses
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	}
	written := metricVia(t, kept, b)
	failed := 0
	for i := range calls {
		if _, err := kept.Invoke(ctx, client.DefaultModule, "bloat", json.RawMessage(`{}`)); err != nil {
			failed++
			if failed == 1 {
				t.Errorf("call %d on the kept connection during the flood: %v", i, err)
			}
		}
	}
	if _, err := kept.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: "during", Code: testmodules.Read(t, "test/echo")}); err != nil {
		t.Errorf("an upload on the kept connection during the flood: %v", err)
	}
	got := stop()
	// Records are written off the request path, in batches: wait until
	// the calls' records are in (or the limit says the store lost them).
	var after float64
	wait.ForState(t, time.Minute, "the calls' records to be written", func() (bool, string) {
		after = metricVia(t, kept, b)
		return after-written >= calls, fmt.Sprintf("%.0f of %d", after-written, calls)
	})
	select {
	case <-b.Proc.Process.Done():
		t.Fatalf("the box died during the flood (OOM kills: %s)", b.OOMKills())
	default:
	}
	t.Logf("%d connections opened; %d of %d calls failed; %.0f records written during the flood; neighbour %d ok, %d other",
		len(conns), failed, calls, after-written, got.OK, len(got.Wrong))
	if after-written < calls {
		t.Errorf("%.0f records written during the flood; want %d", after-written, calls)
	}
	if kills := b.OOMKills(); kills != "0" {
		t.Fatalf("OOM kills in the cgroup: %s", kills)
	}
	if len(got.Wrong) > 0 || got.OK == 0 {
		t.Errorf("the neighbour during the flood: %d ok, %d wrong, first %v", got.OK, len(got.Wrong), got.Wrong)
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	fresh, _ := client.New(b.URL, b.Guest)
	fresh.HTTP = &http.Client{Timeout: time.Minute}
	if _, err := fresh.Invoke(ctx, client.DefaultModule, "during", json.RawMessage(`{"x":1}`)); err != nil {
		t.Errorf("a new client after the flood: %v", err)
	}
}

// metricVia reads edgefaas_activation_records_written_total through c's
// connection (a new one would wait behind the flood).
func metricVia(t *testing.T, c *client.Client, b *cgroupbox.Box) float64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+b.Guest)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer func() {
		io.Copy(io.Discard, resp.Body) // read to the end: the connection is kept
		resp.Body.Close()
	}()
	return readMetric(t, resp.Body, "edgefaas_activation_records_written_total")
}
