// Package budget runs the real single box (`edgefaas core --with-worker`)
// inside a memory cgroup the test makes, at the size of a small edge
// machine's share, and checks that it lives there: every example uploaded
// and driven at 4 and 16 connections, no OOM kill by the cgroup's own
// counter, every request answered, and the budget the node reports equal
// to the limit the kernel enforces.
package budget

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/cgroupbox"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/workloadtargets"
)

// Limit is the cgroup's limit: the small-machine figure.
const Limit = 128 << 20

// workload is one example function called with its arguments; ok checks a
// 200's body.
type workload struct {
	fn, example string
	args        string
	hosts       []string
	ok          func([]byte) bool
}

func has(s string) func([]byte) bool {
	return func(b []byte) bool { return bytes.Contains(b, []byte(s)) }
}

// TestReportedBudgetIsTheLimit: the node's budget is the cgroup's limit,
// or --memory when the operator gives it, and the figures it reports are
// real (a resident set, a guests' share below the budget).
func TestReportedBudgetIsTheLimit(t *testing.T) {
	b := cgroupbox.Start(t, 256<<20)
	n := b.WaitNode(t)
	if int64(n.MemoryBudget) != b.Limit {
		t.Errorf("node reports a budget of %d bytes; the cgroup's limit is %d", n.MemoryBudget, b.Limit)
	}
	if n.TotalMemory <= 0 || n.TotalMemory >= b.Limit || n.MemoryInUse < 1<<20 || n.MemoryInUse >= b.Limit || n.FreeMemory > n.TotalMemory {
		t.Errorf("node reports guests' share %d, free %d, in use %d (budget %d)", n.TotalMemory, n.FreeMemory, n.MemoryInUse, b.Limit)
	}
	t.Run("flag", func(t *testing.T) {
		b := cgroupbox.Start(t, 256<<20, "--memory", "200MiB")
		if n := b.WaitNode(t); n.MemoryBudget != 200<<20 {
			t.Errorf("with --memory 200MiB the node reports %d", n.MemoryBudget)
		}
	})
}

func TestSingleBoxInSmallCgroup(t *testing.T) {
	codes := map[string][]byte{}
	for _, ex := range []string{"hello", "sleep", "matrixmult", "server-reply", "network", "hello-wasi-go", "hello-c"} {
		codes[ex] = testmodules.Read(t, ex)
	}
	b := cgroupbox.Start(t, Limit)
	g, url, usr, guest, limit := b.Group, b.URL, b.User, b.Guest, b.Limit
	echo := startEcho(t)
	fetch := startFetch(t)

	// The budget the node reports is the cgroup's limit.
	node := b.WaitNode(t)
	if int64(node.MemoryBudget) != limit {
		t.Errorf("node reports a budget of %d bytes; the cgroup's limit is %d", node.MemoryBudget, limit)
	}
	if node.TotalMemory <= 0 || node.TotalMemory >= limit || node.MemoryInUse <= 0 {
		t.Errorf("node reports guests' share %d, in use %d (budget %d)", node.TotalMemory, node.MemoryInUse, limit)
	}

	works := []workload{
		{"hello", "hello", `{"name":"edge"}`, nil, has("Hello, edge!")},
		{"sleep", "sleep", `{"ms":20}`, nil, has("Slept for")},
		{"matrixmult", "matrixmult", `{"n":100}`, nil, has(`"checksum"`)},
		{"server_reply", "server-reply", `{"address":"` + echo + `","message":"budget-ping"}`, []string{echo}, has("budget-ping")},
		{"network", "network", `{"url":"http://` + fetch + `/","count":4}`, []string{fetch}, func(b []byte) bool {
			return bytes.Count(b, []byte(`"status":200`)) == 4
		}},
		{"hello_wasi_go", "hello-wasi-go", `{"name":"edge"}`, nil, has("Hello, edge!")},
		{"hello_c", "hello-c", `{"name":"edge"}`, nil, has("Hello, edge!")},
	}
	for _, w := range works {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		_, err := usr.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: w.fn, Code: codes[w.example],
			Metadata: &client.Metadata{AllowedHosts: w.hosts}})
		cancel()
		if err != nil {
			t.Fatalf("upload %s: %v (OOM kills so far: %s)", w.example, err, b.OOMKills())
		}
	}

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}, Timeout: 90 * time.Second}
	for _, w := range works {
		for _, conns := range []int{4, 16} {
			perConn := 10
			got := drive(hc, url, guest, w, conns, perConn)
			t.Logf("%s at %d connections: %v", w.example, conns, got)
			if got.ok+got.busy != conns*perConn {
				t.Errorf("%s at %d connections: %d of %d requests answered 200 or 429: %v", w.example, conns, got.ok+got.busy, conns*perConn, got)
			}
			if conns == 4 && got.busy > 0 {
				t.Errorf("%s at 4 connections: %d answered busy, within the queue", w.example, got.busy)
			}
			if got.ok == 0 {
				t.Errorf("%s at %d connections: no request succeeded: %v", w.example, conns, got)
			}
		}
	}
	// Guests that fill their memory limit, many more at once than the
	// budget holds (24 × 16 MiB against a guests' share of tens of MiB):
	// each is answered (the memory limit's 500, or busy beyond the queue),
	// and nothing is OOM-killed.
	const fillers, fillMiB = 24, 16
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	_, err := usr.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: "membomb", Code: testmodules.Read(t, "test/membomb"),
		Metadata: &client.Metadata{Capacity: fillMiB}})
	cancel()
	if err != nil {
		t.Fatalf("upload membomb: %v", err)
	}
	bomb := workload{"membomb", "test/membomb", `{}`, nil, func([]byte) bool { return false }}
	got := drive(hc, url, guest, bomb, fillers, 1)
	t.Logf("membomb, %d at once with a %d MiB limit each: %v", fillers, fillMiB, got)
	if got.failed > 0 || got.ok > 0 || got.busy+got.other != fillers {
		t.Errorf("membomb: want every one of %d calls answered with an error status: %v", fillers, got)
	}
	if got.first != "" && !strings.HasPrefix(got.first, "500 ") && !strings.HasPrefix(got.first, "429 ") {
		t.Errorf("membomb: unexpected answer %s", got.first)
	}
	if after := drive(hc, url, guest, works[0], 4, 5); after.ok != 20 {
		t.Errorf("hello after the memory fillers: %v", after)
	}
	if n, err := g.OOMKills(); err != nil || n != 0 {
		t.Fatalf("OOM kills in the cgroup: %d (%v)", n, err)
	}
	// Still the same node, alive, with the same budget.
	if n := b.WaitNode(t); int64(n.MemoryBudget) != limit {
		t.Errorf("after the load the node reports a budget of %d, want %d", n.MemoryBudget, limit)
	}
	if peak, err := g.Peak(); err == nil {
		t.Logf("cgroup peak usage %.1f MiB of %d MiB", float64(peak)/(1<<20), Limit>>20)
	}
}

// tally counts the answers of one run.
type tally struct {
	ok, busy, other, failed int
	first                   string
}

func (t tally) String() string {
	s := fmt.Sprintf("%d ok, %d busy, %d other status, %d failed", t.ok, t.busy, t.other, t.failed)
	if t.first != "" {
		s += "; first unexpected: " + t.first
	}
	return s
}

// drive runs conns clients, each sending perConn requests back to back.
// A 429 counts as busy beyond 4 connections and with Retry-After only.
func drive(hc *http.Client, url, token string, w workload, conns, perConn int) tally {
	var mu sync.Mutex
	var total tally
	var wg sync.WaitGroup
	body := `{"args":` + w.args + `}`
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perConn {
				req, _ := http.NewRequest(http.MethodPost, url+"/v1/fn/_/"+w.fn, strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+token)
				resp, err := hc.Do(req)
				var b []byte
				if err == nil {
					b, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
					resp.Body.Close()
				}
				mu.Lock()
				switch {
				case err != nil:
					total.failed++
					if total.first == "" {
						total.first = err.Error()
					}
				case resp.StatusCode == http.StatusOK && w.ok(b):
					total.ok++
				case resp.StatusCode == http.StatusTooManyRequests && conns > 4 && resp.Header.Get("Retry-After") != "":
					total.busy++
				default:
					total.other++
					if total.first == "" {
						total.first = fmt.Sprintf("%d %.300s", resp.StatusCode, b)
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return total
}

// startEcho serves server-reply's target: each line sent is sent back.
func startEcho(t *testing.T) string {
	s, err := workloadtargets.StartEcho()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s.Addr()
}

// startFetch serves network's target: a small JSON answer.
func startFetch(t *testing.T) string {
	f, err := workloadtargets.StartFetch()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f.Addr()
}
