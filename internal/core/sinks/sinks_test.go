package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/core/sinks/sinkspec"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/egress"
	"github.com/edgefaas/edgefaas/internal/testing/storetest"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

func TestPolicyRetry(t *testing.T) {
	p := Policy{MaxAttempts: 4, FirstBackoff: time.Second, MaxBackoff: 3 * time.Second, MaxAge: time.Hour}
	t0 := time.Unix(1000, 0)
	var waits []time.Duration
	for n := 1; ; n++ {
		at, ok := p.Retry(errors.New("down"), n, t0, t0)
		if !ok {
			break
		}
		waits = append(waits, at.Sub(t0))
	}
	if len(waits) != 3 || waits[0] != time.Second || waits[1] != 2*time.Second || waits[2] != 3*time.Second {
		t.Fatalf("waits %v", waits)
	}
	if _, ok := p.Retry(Permanent(errors.New("refused")), 1, t0, t0); ok {
		t.Error("a permanent error is retried")
	}
	if _, ok := p.Retry(errors.New("down"), 1, t0, t0.Add(time.Hour)); ok {
		t.Error("a result older than MaxAge is retried")
	}
}

func TestCouchDocument(t *testing.T) {
	doc, own, _ := CouchDocument("01ID", json.RawMessage(`{"a":1}`))
	if !own || string(doc) != `{"_id":"01ID","a":1}` {
		t.Errorf("object: %s %v", doc, own)
	}
	doc, own, _ = CouchDocument("01ID", json.RawMessage(`{"_id":"mine","a":1}`))
	if own || string(doc) != `{"_id":"mine","a":1}` {
		t.Errorf("own id: %s %v", doc, own)
	}
	doc, _, _ = CouchDocument("01ID", json.RawMessage(`[1,2]`))
	if string(doc) != `{"_id":"01ID","result":[1,2]}` {
		t.Errorf("list: %s", doc)
	}
}

// TestDispatcher delivers through a real store and a real egress policy to
// a webhook on loopback that fails twice, and checks the record and the
// outbox; a second sink is refused by the policy.
func TestDispatcher(t *testing.T) {
	st := storetest.Open(t, filepath.Join(t.TempDir(), "db"), slog.New(slog.DiscardHandler))
	var calls atomic.Int32
	bodies := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		b, _ := io.ReadAll(r.Body)
		sig := r.Header.Get(HeaderSignature)
		if client.VerifyWebhook("k", sig, b, client.WebhookTolerance, time.Now()) != nil || r.Header.Get("X-Token") != "t" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		bodies <- string(b)
	}))
	defer srv.Close()
	policy := egress.New(egress.Config{Grantable: []string{"127.0.0.1"}, AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	d := New(Config{Store: st, HTTP: policy.DoNoRedirect, Dial: policy.DialContext, Policy: Policy{FirstBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}})
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Stop(context.Background())
	list, err := sinkspec.Parse([]byte(`[{"type":"webhook","params":{"url":"` + srv.URL + `/in","headers":{"X-Token":"t"},"secret":"k"}},
		{"type":"webhook","params":{"url":"http://127.0.0.2:9/in"}}]`))
	if err != nil {
		t.Fatal(err)
	}
	f := storage.Function{Module: "_", Name: "f", Sinks: list}
	rec := storage.Activation{ID: "01J0000000000000000000000A", Module: "_", Function: "f", Status: storage.StatusSuccess}
	job := d.Admit(f, &rec, json.RawMessage(`{"v":1}`))
	if job == nil || len(rec.Sinks) != 2 || rec.Sinks[0].Status != storage.SinkPending {
		t.Fatalf("admit: %+v %+v", job, rec.Sinks)
	}
	if err := st.WriteActivationsWithSinks([]storage.Activation{rec}, []storage.SinkJob{*job}, true); err != nil {
		t.Fatal(err)
	}
	d.Committed([]storage.SinkJob{*job})
	select {
	case b := <-bodies:
		if b != `{"v":1}` {
			t.Errorf("body %s", b)
		}
	case <-time.After(time.Minute):
		t.Fatal("not delivered")
	}
	var got storage.Activation
	wait.Until(context.Background(), time.Minute, "both sinks settled", func() bool {
		got, err = st.GetActivation(rec.ID)
		return err == nil && got.Sinks[0].Status == storage.SinkDelivered && got.Sinks[1].Status == storage.SinkFailed
	})
	if got.Sinks[0].Status != storage.SinkDelivered || got.Sinks[0].Attempts != 3 {
		t.Errorf("webhook delivery %+v", got.Sinks[0])
	}
	if got.Sinks[1].Status != storage.SinkFailed || got.Sinks[1].Attempts != 1 || !strings.Contains(got.Sinks[1].LastError, "egress") {
		t.Errorf("refused delivery %+v", got.Sinks[1])
	}
	if jobs, _ := st.SinkJobs(); len(jobs) != 0 {
		t.Errorf("outbox not emptied: %+v", jobs)
	}
}

// TestDispatcherRecovers: an outbox entry left by a previous run is
// delivered by the next Start.
func TestDispatcherRecovers(t *testing.T) {
	st := storetest.Open(t, filepath.Join(t.TempDir(), "db"), slog.New(slog.DiscardHandler))
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Get(HeaderActivation) }))
	defer srv.Close()
	list, _ := sinkspec.Parse([]byte(`[{"type":"webhook","params":{"url":"` + srv.URL + `"}}]`))
	job := storage.SinkJob{ID: "01J0000000000000000000000B", Module: "_", Function: "f", FinishedAt: time.Now(), Result: json.RawMessage(`1`), Sinks: list, Deliveries: sinkspec.Pending(list)}
	old := job
	old.ID, old.FinishedAt = "01J0000000000000000000000C", time.Now().Add(-2*DefaultMaxAge)
	rec := storage.Activation{ID: old.ID, Status: storage.StatusSuccess, Sinks: old.Deliveries}
	if err := st.WriteActivationsWithSinks([]storage.Activation{rec}, []storage.SinkJob{job, old}, true); err != nil {
		t.Fatal(err)
	}
	policy := egress.New(egress.Config{AllowedHosts: []string{"127.0.0.1"}, AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	d := New(Config{Store: st, HTTP: policy.Do})
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Stop(context.Background())
	select {
	case id := <-got:
		if id != job.ID {
			t.Errorf("delivered %q", id)
		}
	case <-time.After(time.Minute):
		t.Fatal("recovered job not delivered")
	}
	// The one older than the max age is given up at once, not sent.
	if r, err := st.GetActivation(old.ID); err != nil || r.Sinks[0].Status != storage.SinkFailed || r.Sinks[0].Attempts != 0 {
		t.Errorf("expired job: %+v %v", r.Sinks, err)
	}
}

// TestRedirectIsNotFollowed: a sink that redirects fails at once, since
// following a 302 would turn the POST into a GET without the result.
func TestRedirectIsNotFollowed(t *testing.T) {
	st := storetest.Open(t, filepath.Join(t.TempDir(), "db"), slog.New(slog.DiscardHandler))
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			gets.Add(1)
			return
		}
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	policy := egress.New(egress.Config{AllowedHosts: []string{"127.0.0.1"}, AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	d := New(Config{Store: st, HTTP: policy.DoNoRedirect})
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer d.Stop(context.Background())
	list, _ := sinkspec.Parse([]byte(`[{"type":"webhook","params":{"url":"` + srv.URL + `/in"}}]`))
	rec := storage.Activation{ID: "01J0000000000000000000000D", Status: storage.StatusSuccess}
	job := d.Admit(storage.Function{Module: "_", Name: "f", Sinks: list}, &rec, json.RawMessage(`{}`))
	if err := st.WriteActivationsWithSinks([]storage.Activation{rec}, []storage.SinkJob{*job}, true); err != nil {
		t.Fatal(err)
	}
	d.Committed([]storage.SinkJob{*job})
	var got storage.Activation
	var err error
	wait.Until(context.Background(), time.Minute, "the sink settled", func() bool {
		got, err = st.GetActivation(rec.ID)
		return err == nil && got.Sinks[0].Status != storage.SinkPending
	})
	if d := got.Sinks[0]; d.Status != storage.SinkFailed || d.Attempts != 1 || !strings.Contains(d.LastError, "302") || gets.Load() != 0 {
		t.Errorf("redirected delivery %+v, GETs %d", d, gets.Load())
	}
}
