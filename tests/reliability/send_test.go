package reliability_test

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

// TestSendsToHungWorker: with the only worker SIGSTOPped, a burst of
// invocations with large arguments fills the link's send queue (the
// sockets, then ergo's queue, where Send blocks with no deadline). Every
// request is answered (503) before its client gives up, well before ergo
// would declare the peer dead (60 s): sends have a deadline. (HTTP
// goroutines blocked in ergo's Send until the peer was declared dead.)
func TestSendsToHungWorker(t *testing.T) {
	core := testcluster.StartCore(t)
	w := core.StartWorker(t, "127.0.0.2")
	cl := core.Client(core.Guest)
	if _, err := cl.CreateFunction(ctxT(t), "_", client.Upload{Name: "echo", Code: testmodules.Read(t, "test/echo"),
		Metadata: &client.Metadata{TimeoutMS: 30000}}); err != nil {
		t.Fatal(err)
	}
	if o := call(cl, "_", "echo", `{"a":1}`, time.Minute, 0); o.status != 200 {
		t.Fatalf("warm-up: %d %s", o.status, o.detail)
	}
	raw := make([]byte, 192<<10)
	rand.Read(raw)
	args := fmt.Sprintf(`{"pad":%q}`, base64.StdEncoding.EncodeToString(raw)) // 256 KiB, incompressible
	w.Signal(syscall.SIGSTOP)
	defer w.Signal(syscall.SIGCONT)
	const n = 400
	const clientTimeout = 40 * time.Second // ergo's own detection: 60 s
	var tl tally
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() { defer wg.Done(); tl.add(call(cl, "_", "echo", args, clientTimeout, 0)) }()
	}
	wg.Wait()
	t.Logf("%d sent, statuses %v, slowest %s; samples %v", tl.sent, tl.byStatus, tl.slowest, trimAll(tl.samples))
	record(row{Test: "sends to a hung worker (SIGSTOP, full send queue)", Faults: 1, Sent: tl.sent, Answered: tl.answered(),
		FailedFast: tl.failedFast(), Note: "every call answered before ergo's 60 s peer detection"})
	if tl.answered() != tl.sent {
		t.Fatalf("%d of %d requests got no answer before their client gave up", tl.sent-tl.answered(), tl.sent)
	}
	// 429: one subject's 100 MiB of bodies at once pass its share of the
	// core's memory for request bodies, refused before they are read.
	for status := range tl.byStatus {
		if status != 503 && status != 200 && status != 429 {
			t.Errorf("unexpected status %d: %s", status, tl.samples[status])
		}
	}
}

func trimAll(m map[int]string) map[int]string {
	out := map[int]string{}
	for k, v := range m {
		out[k] = trim(v, 160)
	}
	return out
}
