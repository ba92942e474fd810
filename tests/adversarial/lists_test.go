package adversarial

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/cgroupbox"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// readMetric finds one unlabelled series in a Prometheus exposition.
func readMetric(t *testing.T, r io.Reader, name string) float64 {
	t.Helper()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not found (%v)", name, sc.Err())
	return 0
}

// invokeMany calls module/_/name n times, 8 at once, and fails the test
// on any error.
func invokeMany(t *testing.T, c *client.Client, name string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan struct{}, n)
	for range n {
		next <- struct{}{}
	}
	close(next)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if _, err := c.Invoke(ctx, client.DefaultModule, name, json.RawMessage(`{}`)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("calling %s: %v", name, err)
	}
}

// waitWritten waits until the core has written at least n records.
func waitWritten(t *testing.T, b *cgroupbox.Box, n float64) {
	t.Helper()
	wait.ForState(t, time.Minute, "records written", func() (bool, string) {
		got := metric(t, b, "edgefaas_activation_records_written_total")
		return got >= n, fmt.Sprintf("%.0f of %.0f", got, n)
	})
}

// TestListFlood: the guest user fills the store with the most expensive
// records a call may leave (64 KiB of control bytes in the logs, six
// bytes each in JSON, and a result of 60 KiB), then asks for
// limit=1000 three times at once: about 130 MiB of JSON each if answered
// whole. The core must answer each with a page bounded by bytes and a
// cursor (next_before), nothing may be OOM-killed, the neighbour is
// answered throughout, and following the cursors yields every record.
func TestListFlood(t *testing.T) {
	const records, lists = 300, 3
	b := cgroupbox.Start(t, Limit)
	b.WaitNode(t)
	n := newNeighbour(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := b.User.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: "bloat", Code: testmodules.Read(t, "test/ctlbloat")}); err != nil {
		t.Fatalf("upload: %v", err)
	}
	written := metric(t, b, "edgefaas_activation_records_written_total")
	invokeMany(t, b.User, "bloat", records)
	waitWritten(t, b, written+records)

	stop := n.During()
	type answer struct {
		status, records, bytes int
		next, err              string
	}
	answers := make([]answer, lists)
	hc := &http.Client{Timeout: 2 * time.Minute}
	var wg sync.WaitGroup
	for i := range lists {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodGet, b.URL+"/v1/activations?function=bloat&limit=1000", nil)
			req.Header.Set("Authorization", "Bearer "+b.Guest)
			resp, err := hc.Do(req)
			if err != nil {
				answers[i].err = err.Error()
				return
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(resp.Body)
			var page struct {
				Data       []json.RawMessage `json:"data"`
				NextBefore string            `json:"next_before"`
			}
			if err == nil {
				err = json.Unmarshal(raw, &page)
			}
			answers[i] = answer{status: resp.StatusCode, records: len(page.Data), bytes: len(raw), next: page.NextBefore}
			if err != nil {
				answers[i].err = err.Error()
			}
		}()
	}
	wg.Wait()
	got := stop()
	t.Logf("answers: %+v; neighbour %d ok, %d other", answers, got.OK, len(got.Wrong))
	if kills := b.OOMKills(); kills != "0" {
		t.Fatalf("OOM kills in the cgroup: %s", kills)
	}
	for i, a := range answers {
		if a.err != "" || a.status != http.StatusOK {
			t.Errorf("list %d: %d %s", i, a.status, a.err)
			continue
		}
		if a.next == "" || a.records == 0 || a.records >= records {
			t.Errorf("list %d: %d records of %d, cursor %q; want a page bounded by bytes with a cursor", i, a.records, records, a.next)
		}
	}
	if len(got.Wrong) > 0 {
		t.Errorf("the neighbour got %d wrong answers during the lists, first: %s", len(got.Wrong), got.Wrong[0])
	}
	if got.OK == 0 {
		t.Errorf("the neighbour got no answer during the lists")
	}
	// The client follows the cursors: every record, newest first, once.
	all, err := b.User.ListActivations(ctx, client.ActivationFilter{Function: "bloat", Limit: 1000})
	if err != nil {
		t.Fatalf("following the cursors: %v", err)
	}
	seen := map[string]bool{}
	for i, a := range all {
		if seen[a.ID] || (i > 0 && a.ID >= all[i-1].ID) {
			t.Fatalf("record %d (%s) repeated or out of order", i, a.ID)
		}
		seen[a.ID] = true
	}
	if len(all) != records {
		t.Errorf("following the cursors gave %d records; want %d", len(all), records)
	}
}

// TestIdleLongPolls: the guest user holds long polls (wait=60) on a
// function nobody calls, from the oldest possible id, while other
// functions' records are committed. The polls are woken only by their own
// function's records, so the records the core examines for them do not
// grow with the commits: 0 while the others are called (counted by
// edgefaas_activation_list_scanned_total), and one call of the idle
// function answers every poll with its record.
func TestIdleLongPolls(t *testing.T) {
	const (
		polls    = 8
		base     = 100 // records in the store when the polls start
		commits  = 200 // other records committed while they wait
		scanned  = "edgefaas_activation_list_scanned_total"
		oldestID = "00000000000000000000000000"
	)
	b := cgroupbox.Start(t, Limit)
	b.WaitNode(t)
	n := newNeighbour(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, name := range []string{"busy", "idle"} {
		if _, err := b.User.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: name, Code: testmodules.Read(t, "test/echo")}); err != nil {
			t.Fatalf("upload: %v", err)
		}
	}
	written := metric(t, b, "edgefaas_activation_records_written_total")
	invokeMany(t, b.User, "busy", base)
	waitWritten(t, b, written+base)
	written = metric(t, b, "edgefaas_activation_records_written_total")

	before := metric(t, b, scanned)
	type answer struct {
		ids []string
		err error
	}
	answers := make(chan answer, polls)
	for range polls {
		go func() {
			list, err := b.User.ListActivationsPage(ctx, client.ActivationFilter{Function: "idle", After: oldestID, Wait: 60 * time.Second})
			var a answer
			a.err = err
			for _, r := range list.Activations {
				a.ids = append(a.ids, r.ID)
			}
			answers <- a
		}()
	}
	// Each poll's first scan examines every record once.
	first := before + polls*(written)
	wait.ForState(t, time.Minute, "the polls' first scans", func() (bool, string) {
		got := metric(t, b, scanned)
		return got >= first, fmt.Sprintf("%.0f of %.0f records scanned", got, first)
	})
	waiting := metric(t, b, scanned)

	stop := n.During()
	invokeMany(t, b.User, "busy", commits)
	got := stop()
	waitWritten(t, b, written+commits+float64(got.OK))
	during := metric(t, b, scanned) - waiting
	t.Logf("%d polls: %.0f records scanned by their first scans, %.0f while %d other records were committed; neighbour %d ok, %d other",
		polls, waiting-before, during, commits+got.OK, got.OK, len(got.Wrong))
	if during != 0 {
		t.Errorf("the idle polls examined %.0f records while %d records of other functions were committed; want 0", during, commits+got.OK)
	}
	select {
	case a := <-answers:
		t.Fatalf("a poll on the idle function was answered before it was called: %+v", a)
	default:
	}

	id := ""
	if _, err := b.User.Invoke(ctx, client.DefaultModule, "idle", json.RawMessage(`{}`)); err != nil {
		t.Fatalf("calling idle: %v", err)
	}
	for range polls {
		a := <-answers
		if a.err != nil || len(a.ids) != 1 || (id != "" && a.ids[0] != id) {
			t.Fatalf("a poll answered %v, %v; want the idle function's one record", a.ids, a.err)
		}
		id = a.ids[0]
	}
	woken := metric(t, b, scanned) - waiting - during
	t.Logf("the idle call woke the polls: %.0f records scanned", woken)
	if woken > polls {
		t.Errorf("waking %d polls examined %.0f records; want at most one each", polls, woken)
	}
	if kills := b.OOMKills(); kills != "0" {
		t.Fatalf("OOM kills in the cgroup: %s", kills)
	}
	if len(got.Wrong) > 0 || got.OK == 0 {
		t.Errorf("the neighbour: %d ok, wrong %v", got.OK, got.Wrong)
	}
}
