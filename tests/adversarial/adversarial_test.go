// Package adversarial attacks the real single box the way a hostile tenant
// would, inside a memory cgroup of a small edge machine's size, while a
// neighbour tenant calls its own hello throughout. Each attack must be
// answered (with an error where it broke a bound), the kernel must
// OOM-kill nothing (the cgroup's own counter), and the neighbour must get
// every answer it asked for.
package adversarial

import (
	"context"
	"encoding/json"
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
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// Limit is the cgroup every attack runs against.
const Limit = 256 << 20

// logTruncated is the marker that ends a call's logs cut at their bound.
const logTruncated = "[edgefaas: log truncated]"

// neighbour is a second tenant calling its own hello while an attack runs.
type neighbour struct {
	url, token string
	hc         *http.Client
}

// newNeighbour makes the subject "neighbour" and uploads its hello.
func newNeighbour(t *testing.T, b *cgroupbox.Box) *neighbour {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cred, err := b.Admin.CreateSubject(ctx, "neighbour")
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(b.URL, cred.Token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: "neighbour_hello", Code: testmodules.Read(t, "hello")}); err != nil {
		t.Fatalf("the neighbour's upload: %v", err)
	}
	return &neighbour{url: b.URL, token: cred.Token, hc: &http.Client{Timeout: 60 * time.Second}}
}

// calls is what the neighbour saw while an attack ran.
type calls struct {
	ok    int
	wrong []string // every answer that was not hello's 200
}

// during calls hello back to back, one at a time, until stop is called;
// stop returns the tally. The loop is bounded by the attack's own length.
func (n *neighbour) during() (stop func() calls) {
	done := make(chan struct{})
	var mu sync.Mutex
	var got calls
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			status, body, err := post(n.hc, n.url+"/v1/fn/_/neighbour_hello", n.token, `{"args":{"name":"neighbour"}}`)
			mu.Lock()
			switch {
			case err != nil:
				got.wrong = append(got.wrong, err.Error())
			case status == http.StatusOK && strings.Contains(body, "Hello, neighbour!"):
				got.ok++
			default:
				got.wrong = append(got.wrong, fmt.Sprintf("%d %.200s", status, body))
			}
			mu.Unlock()
		}
	}()
	return func() calls {
		close(done)
		wg.Wait()
		return got
	}
}

// post sends one authenticated JSON request and reads the answer.
func post(hc *http.Client, url, token, body string) (status int, answer string, err error) {
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), err
}

// attack is one hostile function and what its record must show.
type attack struct {
	name, module string
	// record checks the finished call's record; nil: nothing to check.
	record func(t *testing.T, a client.Activation)
}

// logsCut: the call's logs stop at their bound with the marker.
func logsCut(t *testing.T, a client.Activation) {
	if !a.LogsTruncated || len(a.Logs) == 0 || a.Logs[len(a.Logs)-1] != logTruncated {
		last := ""
		if len(a.Logs) > 0 {
			last = a.Logs[len(a.Logs)-1]
		}
		t.Errorf("record of %s: %d log lines, truncated %v, last %q; want the logs cut with %q", a.ID, len(a.Logs), a.LogsTruncated, last, logTruncated)
	}
}

// TestHostileFunctions uploads each hostile function as the guest user and
// calls it once while the neighbour calls hello, each in a box of its own.
func TestHostileFunctions(t *testing.T) {
	attacks := []attack{
		// Empty lines through the FunLess log import: no bytes, but each
		// line costs the host a string header.
		{name: "emptylog", module: "test/emptylog", record: logsCut},
		// Bare newlines on stderr: the same through WASI's fd_write.
		{name: "newlines", module: "test/newlines", record: logsCut},
		{name: "spin", module: "test/spin"},
	}
	hc := &http.Client{Timeout: 5 * time.Minute}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			// A box of its own: one attack's damage is not the next one's;
			// the boxes run at once, each attack for its whole timeout.
			t.Parallel()
			b := cgroupbox.Start(t, Limit)
			b.WaitNode(t)
			n := newNeighbour(t, b)
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			if _, err := b.User.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: a.name, Code: testmodules.Read(t, a.module), Metadata: &client.Metadata{TimeoutMS: 15000}}); err != nil {
				t.Fatalf("upload: %v", err)
			}
			stop := n.during()
			req, _ := http.NewRequest(http.MethodPost, b.URL+"/v1/fn/_/"+a.name, strings.NewReader(`{"args":{}}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+b.Guest)
			resp, err := hc.Do(req)
			got := stop()
			if err != nil {
				t.Fatalf("the attack was not answered: %v (OOM kills: %s)", err, b.OOMKills())
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			t.Logf("attack answered %d %.200s; neighbour: %d ok, %d other", resp.StatusCode, body, got.ok, len(got.wrong))
			if kills := b.OOMKills(); kills != "0" {
				t.Fatalf("OOM kills in the cgroup: %s", kills)
			}
			if len(got.wrong) > 0 {
				t.Errorf("the neighbour got %d wrong answers during the attack, first: %s", len(got.wrong), got.wrong[0])
			}
			if got.ok == 0 {
				t.Errorf("the neighbour got no answer during the attack")
			}
			if a.record == nil {
				return
			}
			id := resp.Header.Get("X-Edgefaas-Activation")
			if id == "" {
				t.Fatalf("no activation id in the answer's headers")
			}
			// The record is written after the answer: wait for it.
			var rec client.Activation
			wait.ForState(t, time.Minute, "record "+id, func() (bool, string) {
				var err error
				rec, err = b.User.GetActivation(ctx, id)
				if err != nil {
					return false, err.Error()
				}
				return true, ""
			})
			a.record(t, rec)
			if raw, err := json.Marshal(rec); err == nil && len(raw) > 1<<20 {
				t.Errorf("record %s is %d bytes", id, len(raw))
			}
		})
	}
}
