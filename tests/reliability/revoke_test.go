package reliability_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestRevokedSubjectStops: once a subject is revoked nothing more runs or
// goes out on its behalf. Its queued asynchronous calls end "canceled"
// (saying why) without a worker ever running them, its cron and MQTT
// triggers stop, and no callback of its calls arrives, while another
// subject's call and callback, started after, go through. A new token
// starts its triggers again. Deleting a module ends the calls queued for
// its functions ("no longer exists") and stops their triggers.
func TestRevokedSubjectStops(t *testing.T) {
	var aliceHits, guestHits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/alice") {
			aliceHits.Add(1)
		} else {
			guestHits.Add(1)
		}
	}))
	defer srv.Close()
	broker := testcluster.PortNum(t, "127.0.0.1")
	core := testcluster.StartCore(t, "--callback-allow-host", "127.0.0.1", "--callback-allow-net", "127.0.0.0/8",
		"--mqtt-broker", fmt.Sprintf("127.0.0.1:%d", broker))
	adm, guest := core.Client(core.Admin), core.Client(core.Guest)
	creds, err := adm.CreateSubject(ctxT(t), "alice")
	if err != nil {
		t.Fatal(err)
	}
	alice := core.Client(creds.Token)
	// The triggers tick every second: below the default quota's minimum period.
	zero := int64(0)
	for _, name := range []string{"alice", "guest"} {
		if _, err := adm.SetSubjectQuota(ctxT(t), name, client.QuotaChange{MinCronPeriodSeconds: &zero}); err != nil {
			t.Fatal(err)
		}
	}
	echo := testmodules.Read(t, "test/echo")
	events := fmt.Sprintf(`[{"type":"cron","schedule":"@every 1s"},{"type":"mqtt","params":{"host":"127.0.0.1","port":%d,"topic":"alice/#"}}]`, broker)
	if _, err := alice.CreateFunction(ctxT(t), "_", client.Upload{Name: "aecho", Code: echo, Events: json.RawMessage(events)}); err != nil {
		t.Fatal(err)
	}
	if err := guest.CreateModule(ctxT(t), "gmod"); err != nil {
		t.Fatal(err)
	}
	if _, err := guest.CreateFunction(ctxT(t), "gmod", client.Upload{Name: "gdel", Code: echo, Events: json.RawMessage(`[{"type":"cron","schedule":"@every 1s"}]`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := guest.CreateFunction(ctxT(t), "_", client.Upload{Name: "gecho", Code: echo}); err != nil {
		t.Fatal(err)
	}
	triggers := func() (cron, mqtt float64) {
		return core.Metric(t, `edgefaas_triggers{type="cron"}`), core.Metric(t, `edgefaas_triggers{type="mqtt"}`)
	}
	wait.ForState(t, 30*time.Second, "both subjects' triggers run", func() (bool, string) {
		c, m := triggers()
		return c == 2 && m == 1, fmt.Sprintf("cron %v, mqtt %v", c, m)
	})

	// No worker: the calls wait in the queue.
	var aliceIDs, gdelIDs []string
	for i := range 5 {
		id, err := alice.InvokeAsync(ctxT(t), "_", "aecho", json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), srv.URL+"/alice")
		if err != nil {
			t.Fatal(err)
		}
		aliceIDs = append(aliceIDs, id)
		if id, err = guest.InvokeAsync(ctxT(t), "gmod", "gdel", json.RawMessage(`{}`), ""); err != nil {
			t.Fatal(err)
		}
		gdelIDs = append(gdelIDs, id)
	}

	if err := adm.RevokeSubject(ctxT(t), "alice"); err != nil {
		t.Fatal(err)
	}
	if err := guest.DeleteModule(ctxT(t), "gmod"); err != nil {
		t.Fatal(err)
	}
	final := func(id string) client.Activation {
		t.Helper()
		var a client.Activation
		wait.ForState(t, 30*time.Second, "activation "+id+" ends", func() (bool, string) {
			var err error
			a, err = adm.GetActivation(ctxT(t), id)
			return err == nil && a.Final(), fmt.Sprintf("%+v, %v", a, err)
		})
		return a
	}
	for _, id := range aliceIDs {
		if a := final(id); a.Status != "canceled" || !strings.Contains(a.Error, "revoked") || a.Worker != "" {
			t.Errorf("alice's queued call after the revocation: %+v", a)
		}
	}
	for _, id := range gdelIDs {
		if a := final(id); a.Status != "runtime_error" || !strings.Contains(a.Error, "no longer exists") {
			t.Errorf("a call of a deleted module's function: %+v", a)
		}
	}
	wait.ForState(t, 30*time.Second, "the revoked subject's and the deleted function's triggers stop", func() (bool, string) {
		c, m := triggers()
		return c == 0 && m == 0, fmt.Sprintf("cron %v, mqtt %v", c, m)
	})
	// Every call of alice's function (hers and her cron's) has ended
	// without running.
	recs, err := adm.ListActivations(ctxT(t), client.ActivationFilter{Module: "_", Function: "aecho", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if a := final(r.ID); a.Status != "canceled" {
			t.Errorf("a call of the revoked subject's function: %+v", a)
		}
	}

	// A worker joins; another subject's call runs and calls back.
	core.StartWorker(t, "127.0.0.2")
	id, err := guest.InvokeAsync(ctxT(t), "_", "gecho", json.RawMessage(`{}`), srv.URL+"/guest")
	if err != nil {
		t.Fatal(err)
	}
	if a := final(id); a.Status != "success" {
		t.Fatalf("the guest's call: %+v", a)
	}
	if err := wait.Until(ctxT(t), 30*time.Second, "the guest's callback", func() bool { return guestHits.Load() == 1 }); err != nil {
		t.Fatalf("%v; core log:\n%s", err, core.Log())
	}
	if n := aliceHits.Load(); n != 0 {
		t.Errorf("%d callbacks of the revoked subject's calls arrived", n)
	}
	after, err := adm.ListActivations(ctxT(t), client.ActivationFilter{Module: "_", Function: "aecho", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(recs) {
		t.Errorf("the revoked subject's function has %d records, %d when its triggers stopped", len(after), len(recs))
	}

	// A new token: its triggers run again.
	if _, err := adm.RotateSubject(ctxT(t), "alice"); err != nil {
		t.Fatal(err)
	}
	wait.ForState(t, 30*time.Second, "the subject's triggers run again", func() (bool, string) {
		c, m := triggers()
		return c == 1 && m == 1, fmt.Sprintf("cron %v, mqtt %v", c, m)
	})
}
