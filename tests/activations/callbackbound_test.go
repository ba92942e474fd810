package activations_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestCallbackWithinSubjectBound: a completion callback goes
// out on the submitter's behalf, so within the subject's egress bound as
// well as --callback-allow-host: bound elsewhere, it is never sent; bound
// to the server, it arrives (the change applies without a restart).
func TestCallbackWithinSubjectBound(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { hits.Add(1) }))
	defer srv.Close()
	core := testcluster.StartCore(t, "--callback-allow-host", "127.0.0.1", "--callback-allow-net", "127.0.0.0/8")
	core.StartWorker(t, "127.0.0.2")
	adm, guest := core.Client(core.Admin), core.Client(core.Guest)
	upload(t, guest, "_", "echo", "test/echo", nil)

	if _, err := adm.SetSubjectEgress(ctxT(t), "guest", []string{"hooks.example:443"}); err != nil {
		t.Fatal(err)
	}
	id, err := guest.InvokeAsync(ctxT(t), "_", "echo", json.RawMessage(`{}`), srv.URL+"/denied")
	if err != nil {
		t.Fatal(err)
	}
	waitFinal(t, guest, id, 30*time.Second)
	core.WaitLog(regexp.MustCompile(`callback refused by the subject's egress bound.*`+id), 30*time.Second)
	if n := hits.Load(); n != 0 {
		t.Fatalf("%d callbacks outside the bound arrived", n)
	}

	u, _ := url.Parse(srv.URL)
	if _, err := adm.SetSubjectEgress(ctxT(t), "guest", []string{u.Host}); err != nil {
		t.Fatal(err)
	}
	id, err = guest.InvokeAsync(ctxT(t), "_", "echo", json.RawMessage(`{}`), srv.URL+"/allowed")
	if err != nil {
		t.Fatal(err)
	}
	waitFinal(t, guest, id, 30*time.Second)
	if err := wait.Until(context.Background(), 30*time.Second, "the callback within the bound", func() bool { return hits.Load() != 0 }); err != nil {
		t.Fatalf("%v; core log:\n%s", err, core.Log())
	}
}
