package adversarial

import (
	"bytes"
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
)

// TestBodyFlood: the guest user sends 48 synchronous calls at once, each
// with a 6 MiB body (the largest an invocation may have), to a function
// that holds its call for a second. Bodies held at once are what a
// request costs before any other bound sees it: the core must admit them
// by memory, answering the excess 429 before reading them, so nothing is
// OOM-killed, every request is answered (200 or 429), a client that
// retries as told is served, and the neighbour is answered throughout.
func TestBodyFlood(t *testing.T) {
	const n = 48
	const retries = 3
	b := cgroupbox.Start(t, Limit)
	b.WaitNode(t)
	nb := newNeighbour(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := b.User.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: "slow", Code: testmodules.Read(t, "sleep"),
		Metadata: &client.Metadata{TimeoutMS: 60000}}); err != nil {
		t.Fatalf("upload: %v", err)
	}
	// One small call first: the flood is about bodies, not about the
	// first call's compile on the worker.
	if _, err := b.User.Invoke(ctx, client.DefaultModule, "slow", json.RawMessage(`{"ms":1}`)); err != nil {
		t.Fatalf("first call: %v", err)
	}
	body, _ := json.Marshal(map[string]any{"args": map[string]any{"ms": 1000, "pad": strings.Repeat("x", 6<<20-64)}})
	hc := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{ExpectContinueTimeout: 5 * time.Second, MaxConnsPerHost: n}}
	stop := nb.During()
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[string]int{}
	details := map[string]string{} // the first answer's body for each status
	send := func() (key, detail string) {
		req, _ := http.NewRequest(http.MethodPost, b.URL+"/v1/fn/_/slow", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+b.Guest)
		req.Header.Set("Expect", "100-continue")
		resp, err := hc.Do(req)
		if err != nil {
			return "no answer", err.Error() // the details vary by connection
		}
		d, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return fmt.Sprint(resp.StatusCode), strings.TrimSpace(string(d))
	}
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A client told 429 and Retry-After retries, a bounded
			// number of times: some of the flood must then be served.
			var key, detail string
			for try := 0; try < retries; try++ {
				if try > 0 {
					time.Sleep(time.Second) // the Retry-After the core gives
				}
				if key, detail = send(); key != "429" {
					break
				}
			}
			mu.Lock()
			statuses[key]++
			if _, seen := details[key]; !seen {
				details[key] = detail
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	got := stop()
	t.Logf("answers: %v (first of each: %q); neighbour %d ok, %d other", statuses, details, got.OK, len(got.Wrong))
	if kills := b.OOMKills(); kills != "0" {
		t.Fatalf("OOM kills in the cgroup: %s (answers %v)", kills, statuses)
	}
	for k := range statuses {
		if k != "200" && k != "429" {
			t.Errorf("%d requests answered %s; want 200 or 429", statuses[k], k)
		}
	}
	if statuses["200"] == 0 {
		t.Errorf("no call was served: %v", statuses)
	}
	if len(got.Wrong) > 0 {
		t.Errorf("the neighbour got %d wrong answers, first: %s", len(got.Wrong), got.Wrong[0])
	}
	if got.OK == 0 {
		t.Errorf("the neighbour got no answer during the flood")
	}
}
