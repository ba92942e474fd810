package activations_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestCallbacksSurviveCoreKill: completion callbacks are kept in the
// core's outbox with their records. Calls finish while their callback
// receiver is down, the core is killed with SIGKILL, the receiver comes
// up, the core restarts: every acknowledged call's callback arrives (at
// least once), with its final record.
func TestCallbacksSurviveCoreKill(t *testing.T) {
	const n = 12
	port := testcluster.Port(t, "127.0.0.1")
	core := testcluster.StartCore(t, "--callback-allow-host", "127.0.0.1", "--callback-allow-net", "127.0.0.0/8")
	core.StartWorker(t, "127.0.0.2")
	guest := core.Client(core.Guest)
	upload(t, guest, "_", "echo", "test/echo", nil)

	// The receiver is down: nothing listens on its port yet.
	hook := "http://127.0.0.1:" + port + "/done"
	ids := map[string]bool{}
	for i := range n {
		id, err := guest.InvokeAsync(ctxT(t), "_", "echo", json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)), hook)
		if err != nil {
			t.Fatalf("async call %d: %v", i, err)
		}
		ids[id] = true
	}
	for id := range ids {
		if a := waitFinal(t, guest, id, 60*time.Second); a.Status != "success" {
			t.Fatalf("call %s: %+v", id, a)
		}
	}
	core.Kill()

	var mu sync.Mutex
	got := map[string]client.Activation{}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Data client.Activation }
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got[body.Data.ID] = body.Data
		mu.Unlock()
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	core.Restart()
	err = wait.Until(context.Background(), 30*time.Second, "every callback after the restart", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= n
	})
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		t.Fatalf("%v: %d of %d callbacks arrived; core log:\n%s", err, len(got), n, core.Log())
	}
	// A call whose final record the kill caught before it was on disk
	// ends lost at the restart, and its callback says so.
	for id, a := range got {
		if !ids[id] || !a.Final() || a.Status != "success" && a.Status != "lost" {
			t.Errorf("callback for %s: %+v", id, a)
		}
	}
}
