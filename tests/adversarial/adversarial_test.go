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
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/attacks"
	"github.com/edgefaas/edgefaas/internal/testing/cgroupbox"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// Limit is the cgroup every attack runs against.
const Limit = 256 << 20

// logTruncated is the marker that ends a call's logs cut at their bound.
const logTruncated = "[edgefaas: log truncated]"

// newNeighbour makes the subject "neighbour" and uploads its hello: a
// second tenant calling it while an attack runs (internal/testing/attacks,
// shared with the bench's attacks section).
func newNeighbour(t *testing.T, b *cgroupbox.Box) *attacks.Neighbour {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	n, err := attacks.NewNeighbour(ctx, b.Admin, b.URL, testmodules.Read(t, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	return n
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
			stop := n.During()
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
			t.Logf("attack answered %d %.200s; neighbour: %d ok, %d other", resp.StatusCode, body, got.OK, len(got.Wrong))
			if kills := b.OOMKills(); kills != "0" {
				t.Fatalf("OOM kills in the cgroup: %s", kills)
			}
			if len(got.Wrong) > 0 {
				t.Errorf("the neighbour got %d wrong answers during the attack, first: %s", len(got.Wrong), got.Wrong[0])
			}
			if got.OK == 0 {
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
