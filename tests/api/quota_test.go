package api_test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
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
