package adversarial

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/attacks"
	"github.com/edgefaas/edgefaas/internal/testing/cgroupbox"
)

// TestJoinFlood: the public join route is flooded by clients with no
// token of the core's (attacks.JoinBodies): certificate requests for a
// 4096-bit RSA key (costly to verify, were a signature checked before the
// token), bodies at the JSON bound filled with junk, and requests without
// a token. Each
// must be refused with a 4xx (the token is checked before anything
// costly), nothing OOM-killed, and the neighbour answered throughout.
func TestJoinFlood(t *testing.T) {
	const (
		clients = 16
		each    = 60
	)
	b := cgroupbox.Start(t, Limit)
	b.WaitNode(t)
	n := newNeighbour(t, b)
	bodies, err := attacks.JoinBodies()
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxConnsPerHost: clients, MaxIdleConnsPerHost: clients}}
	stop := n.During()
	var mu sync.Mutex
	status := map[int]int{}
	var wrong []string
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				body := bodies[(c+i)%len(bodies)]
				resp, err := hc.Post(b.URL+"/v1/nodes/join", "application/json", bytes.NewReader(body))
				mu.Lock()
				if err != nil {
					wrong = append(wrong, err.Error())
					mu.Unlock()
					continue
				}
				status[resp.StatusCode]++
				if resp.StatusCode < 400 || resp.StatusCode > 499 {
					answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
					wrong = append(wrong, fmt.Sprintf("%d %s", resp.StatusCode, answer))
				}
				mu.Unlock()
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	got := stop()
	t.Logf("%d join requests answered %v; neighbour: %d ok, %d other", clients*each, status, got.OK, len(got.Wrong))
	if kills := b.OOMKills(); kills != "0" {
		t.Fatalf("OOM kills in the cgroup: %s", kills)
	}
	if len(wrong) > 0 {
		t.Errorf("%d join requests not refused with a 4xx, first: %s", len(wrong), wrong[0])
	}
	if len(got.Wrong) > 0 {
		t.Errorf("the neighbour got %d wrong answers during the flood, first: %s", len(got.Wrong), got.Wrong[0])
	}
	if got.OK == 0 {
		t.Errorf("the neighbour got no answer during the flood")
	}
}
