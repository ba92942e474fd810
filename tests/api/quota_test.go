package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestQuotaBoundsOneTenant: a subject's function quota refuses its next
// create with 403 naming the quota and its value, before anything is
// stored, while another tenant still creates; parallel creates at the
// last slot leave exactly one winner; a cron trigger below the minimum
// period is refused at upload; the admin sets, shows and clears the
// quota, and is itself exempt.
func TestQuotaBoundsOneTenant(t *testing.T) {
	dir := t.TempDir()
	c := startCore(t, dir, nil)
	alice, bob := c.createSubject("alice"), c.createSubject("bob")

	expect(t, "a user sets a quota", c.json("PUT", "/v1/admin/subjects/alice/quota", alice, `{"functions":1000}`), http.StatusForbidden, "admin")
	expect(t, "a negative quota", c.json("PUT", "/v1/admin/subjects/alice/quota", c.admin, `{"functions":-1}`), http.StatusBadRequest, "functions")
	expect(t, "a quota of no subject", c.json("PUT", "/v1/admin/subjects/nobody/quota", c.admin, `{"functions":1}`), http.StatusNotFound, "nobody")
	expect(t, "set alice's quota", c.json("PUT", "/v1/admin/subjects/alice/quota", c.admin, `{"functions":2}`), http.StatusOK, "")

	c.createFunction(alice, "_", "a1", echoWasm, "")
	c.createFunction(alice, "_", "a2", echoWasm, "")
	create := func(token, name, events string) response {
		fields := []field{{name: "name", value: name}, {name: "code", value: string(echoWasm), file: true}}
		if events != "" {
			fields = append(fields, field{name: "events", value: events})
		}
		return c.upload("POST", "/v1/fn/_", token, fields...)
	}
	expect(t, "alice's third function", create(alice, "a3", ""), http.StatusForbidden, `subject "alice" has functions 2`)
	expect(t, "the refused function is not stored", c.json("GET", "/v1/fn/_/a3", alice, ""), http.StatusNotFound, "")
	for i := range 3 {
		c.createFunction(bob, "_", fmt.Sprintf("b%d", i), echoWasm, "")
	}
	c.createFunction(c.admin, "_", "root1", echoWasm, "")

	var v struct {
		Quota   struct{ Functions, MinCronPeriodSeconds int64 }
		Usage   struct{ Functions int64 }
		Default bool
	}
	c.json("GET", "/v1/admin/subjects/alice/quota", c.admin, "").data(t, &v)
	if v.Quota.Functions != 2 || v.Usage.Functions != 2 || v.Default {
		t.Errorf("alice's quota view %+v", v)
	}

	// A cron trigger ticking faster than the minimum period (default
	// 10 s) is refused at upload; one at the minimum passes.
	expect(t, "bob's @every 1s", create(bob, "btick", `[{"type":"cron","schedule":"@every 1s"}]`), http.StatusForbidden, "min_cron_period_seconds 10")
	expect(t, "bob's every second in cron syntax", create(bob, "btick", `[{"type":"cron","schedule":"* * * * * *"}]`), http.StatusForbidden, "min_cron_period_seconds 10")
	expect(t, "bob's @every 10s", create(bob, "btick", `[{"type":"cron","schedule":"@every 10s"}]`), http.StatusCreated, "")
	expect(t, "the admin's @every 1s", create(c.admin, "rtick", `[{"type":"cron","schedule":"@every 1s"}]`), http.StatusCreated, "")

	// N parallel creates race for alice's last slot: exactly one wins.
	expect(t, "raise alice's quota by one", c.json("PUT", "/v1/admin/subjects/alice/quota", c.admin, `{"functions":3}`), http.StatusOK, "")
	const n = 8
	status := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			status[i] = create(alice, fmt.Sprintf("race%d", i), "").status
		}()
	}
	wg.Wait()
	won, refused := 0, 0
	for _, s := range status {
		switch s {
		case http.StatusCreated:
			won++
		case http.StatusForbidden:
			refused++
		}
	}
	if won != 1 || refused != n-1 {
		t.Errorf("parallel creates at the last slot: %v; want one 201 and %d 403", status, n-1)
	}

	// Cleared: the default (100 functions) applies again.
	expect(t, "clear alice's quota", c.json("DELETE", "/v1/admin/subjects/alice/quota", c.admin, ""), http.StatusNoContent, "")
	expect(t, "alice after the clear", create(alice, "a4", ""), http.StatusCreated, "")
	c.json("GET", "/v1/admin/subjects/alice/quota", c.admin, "").data(t, &v)
	if !v.Default || v.Quota.Functions != 100 || v.Usage.Functions != 4 {
		t.Errorf("alice's quota view after the clear %+v", v)
	}
}

// TestQuotaQueuedBytes: a subject's queued_bytes quota (its default from
// the core's --quota-queued-bytes) refuses its next asynchronous call with
// 429 naming the quota, while another tenant still queues; an admin
// raises it; each refusal is counted by the quota's name. No worker runs
// the calls: they stay queued.
func TestQuotaQueuedBytes(t *testing.T) {
	dir := t.TempDir()
	c := startCore(t, dir, nil, "--data-dir", dir, "--http-addr", "127.0.0.1:0", "--quota-queued-bytes", "1MiB")
	alice, bob := c.createSubject("alice"), c.createSubject("bob")
	c.createFunction(alice, "_", "a", echoWasm, "")
	c.createFunction(bob, "_", "b", echoWasm, "")
	args := `{"args":{"s":"` + strings.Repeat("x", 300<<10) + `"}}`
	for i := range 3 {
		expect(t, fmt.Sprintf("alice's async call %d", i), c.json("POST", "/v1/fn/_/a?async=true", alice, args), http.StatusAccepted, "")
	}
	r := c.json("POST", "/v1/fn/_/a?async=true", alice, args)
	expect(t, "alice's fourth async call", r, http.StatusTooManyRequests, `subject "alice" has queued_bytes 1048576`)
	if r.header.Get("Retry-After") == "" {
		t.Errorf("alice's refused call has no Retry-After")
	}
	for i := range 3 {
		expect(t, fmt.Sprintf("bob's async call %d", i), c.json("POST", "/v1/fn/_/b?async=true", bob, args), http.StatusAccepted, "")
	}
	if got := c.metric(`edgefaas_quota_refusals_total{quota="queued_bytes"}`); got != "1" {
		t.Errorf("queued_bytes refusals counted %s, want 1", got)
	}
	expect(t, "raise alice's queued bytes", c.json("PUT", "/v1/admin/subjects/alice/quota", c.admin, `{"queued_bytes":2097152}`), http.StatusOK, "")
	expect(t, "alice's call after the raise", c.json("POST", "/v1/fn/_/a?async=true", alice, args), http.StatusAccepted, "")
	var v struct {
		Quota struct {
			QueuedBytes  int64 `json:"queued_bytes"`
			RecordsBytes int64 `json:"records_bytes"`
		}
	}
	c.json("GET", "/v1/admin/subjects/bob/quota", c.admin, "").data(t, &v)
	if v.Quota.QueuedBytes != 1<<20 || v.Quota.RecordsBytes != 16<<20 {
		t.Errorf("bob's default quota %+v; want queued_bytes from the flag and the default records_bytes", v.Quota)
	}
}

// TestQuotaRecordsRetained: a tenant's flood of calls makes retention
// delete its own oldest records down to its records_bytes quota, not an
// older record of another tenant's, even when all records together pass
// the core's byte bound. Without a worker every call ends no_worker and
// keeps a small record; a restart runs retention once, at start.
func TestQuotaRecordsRetained(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--data-dir", dir, "--http-addr", "127.0.0.1:0", "--activation-max-bytes", "16000", "--activation-prune-every", "1h"}
	c := startCore(t, dir, nil, args...)
	alice, bob := c.createSubject("alice"), c.createSubject("bob")
	c.createFunction(alice, "_", "a", echoWasm, "")
	c.createFunction(bob, "_", "b", echoWasm, "")
	expect(t, "set alice's records bytes", c.json("PUT", "/v1/admin/subjects/alice/quota", c.admin, `{"records_bytes":3000}`), http.StatusOK, "")
	bobCall := c.json("POST", "/v1/fn/_/b", bob, `{}`)
	bobID := bobCall.header.Get("X-Edgefaas-Activation")
	if bobID == "" {
		t.Fatalf("bob's call has no activation id: %d %s", bobCall.status, bobCall.body)
	}
	const flood = 150
	for range flood {
		c.json("POST", "/v1/fn/_/a", alice, `{}`)
	}
	count := func(token string) int {
		var recs []json.RawMessage
		c.json("GET", "/v1/activations?limit=1000", token, "").data(t, &recs)
		return len(recs)
	}
	// The writer may still hold the last records: wait until all are in.
	wait.ForState(t, time.Minute, "alice's records written", func() (bool, string) {
		n := count(alice)
		return n == flood, fmt.Sprintf("%d of %d", n, flood)
	})
	c.stop()
	c = startCore(t, dir, nil, args...)
	wait.ForState(t, time.Minute, "retention at start", func() (bool, string) {
		n := c.metric("edgefaas_activation_records_pruned_total")
		return n != "0", "pruned " + n
	})
	expect(t, "bob's record after alice's flood", c.json("GET", "/v1/activations/"+bobID, bob, ""), http.StatusOK, "")
	if n := count(alice); n == 0 || n >= flood/5 {
		t.Errorf("alice keeps %d of her %d records; want her newest, within her 3000 bytes", n, flood)
	}
}
