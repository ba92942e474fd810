package adversarial

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/cgroupbox"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

// TestQueueFlood: the guest user queues asynchronous calls with 4 MiB of
// args each to a function no worker can run (a tag nobody has), until the
// core refuses more; then the box is killed -9 and restarted in the same
// cgroup. The queued args wait on disk, not in the core's heap, so neither
// the flood nor the restart, which reads the queue back, may be OOM-killed;
// the neighbour is answered throughout; every refusal is a 429; and every
// acknowledged call is still there after the restart.
func TestQueueFlood(t *testing.T) {
	const (
		argBytes = 4 << 20
		most     = 120 // 480 MiB asked for: more than the cgroup, and than one subject's share of the queue
	)
	b := cgroupbox.Start(t, Limit)
	b.WaitNode(t)
	n := newNeighbour(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := b.User.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: "nowhere", Code: testmodules.Read(t, "test/echo"), Metadata: &client.Metadata{Tag: "nowhere"}}); err != nil {
		t.Fatalf("upload: %v", err)
	}
	args, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", argBytes)})
	stop := n.During()
	var queued []string
	var refusal *client.Error
	for range most {
		id, err := b.User.InvokeAsync(ctx, client.DefaultModule, "nowhere", args, "")
		if err != nil {
			if !errors.As(err, &refusal) || refusal.Status != http.StatusTooManyRequests {
				got := stop()
				t.Fatalf("after %d queued calls: %v (OOM kills: %s; neighbour %d ok)", len(queued), err, b.OOMKills(), got.OK)
			}
			break
		}
		queued = append(queued, id)
	}
	got := stop()
	t.Logf("%d calls of %d MiB queued; then %v; neighbour %d ok, %d other", len(queued), argBytes>>20, refusal, got.OK, len(got.Wrong))
	if kills := b.OOMKills(); kills != "0" {
		t.Fatalf("OOM kills in the cgroup during the flood: %s", kills)
	}
	if refusal == nil {
		t.Errorf("%d calls of %d MiB were all queued: no bound refused the flood", most, argBytes>>20)
	}
	if len(got.Wrong) > 0 {
		t.Errorf("the neighbour got %d wrong answers during the flood, first: %s", len(got.Wrong), got.Wrong[0])
	}
	if got.OK == 0 {
		t.Errorf("the neighbour got no answer during the flood")
	}
	if len(queued) == 0 {
		t.Fatal("nothing was queued: the test proves nothing")
	}

	// A restart reads the queue back: an index, not 4 MiB per call.
	b.Proc.Process.Kill()
	b.Proc.Restart()
	b.Proc.WaitLog(testcluster.ListeningRE, 2*time.Minute)
	b.WaitNode(t)
	if kills := b.OOMKills(); kills != "0" {
		t.Fatalf("OOM kills in the cgroup after the restart: %s", kills)
	}
	// Every acknowledged call is still there: waiting, or, if the kill
	// caught it marked running (a call being tried finds no worker), ended
	// "lost" with its record saying so.
	stop = n.During()
	status := map[string]int{}
	for _, id := range queued {
		a, err := b.User.GetActivation(ctx, id)
		if err != nil {
			t.Errorf("acknowledged call %s after the restart: %v", id, err)
			continue
		}
		status[a.Status]++
		if a.Status != "queued" && a.Status != "running" && a.Status != "lost" {
			t.Errorf("acknowledged call %s after the restart: %q; want it queued", id, a.Status)
		}
	}
	got = stop()
	t.Logf("after the restart: %v", status)
	if status["queued"]+status["running"] == 0 {
		t.Errorf("no call waits after the restart: %v", status)
	}
	if len(got.Wrong) > 0 || got.OK == 0 {
		t.Errorf("the neighbour after the restart: %d ok, wrong %v", got.OK, got.Wrong)
	}
}
