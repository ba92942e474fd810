package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

type fixedNodes []cluster.NodeInfo

func (f fixedNodes) NodeList() []cluster.NodeInfo { return append([]cluster.NodeInfo(nil), f...) }
func (f fixedNodes) Connect(addr string) error    { return nil }

// TestNodeListForAdminsOnly: GET /v1/nodes (worker names, load, the code
// hashes compiled on each) is the operator's: other subjects get 403.
func TestNodeListForAdminsOnly(t *testing.T) {
	hash := "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	ts := newTestServer(t, Config{Nodes: fixedNodes{{Name: "worker@a", Functions: []string{hash}}}})
	user, err := ts.store.CreateSubject("alice", false)
	if err != nil {
		t.Fatal(err)
	}
	admin := ts.token
	ts.token = user
	if status, _, body := ts.do("GET", "/v1/nodes", "", nil); status != http.StatusForbidden {
		t.Fatalf("a user lists the nodes: %d %s", status, body)
	}
	ts.token = admin
	status, _, body := ts.do("GET", "/v1/nodes", "", nil)
	var out struct{ Data []cluster.NodeInfo }
	if status != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil || len(out.Data) != 1 || len(out.Data[0].Functions) != 1 || out.Data[0].Functions[0] != hash {
		t.Fatalf("an admin lists the nodes: %d %s", status, body)
	}
}

// TestReadyzDoesNotScan: /readyz is public; it used to run Store.Stats, a
// scan of every module, function and code reference, on each request.
func TestReadyzDoesNotScan(t *testing.T) {
	ts := newTestServer(t, Config{})
	for i := range 200 {
		if _, err := ts.store.CreateModule(fmt.Sprintf("m%d", i), "tester"); err != nil {
			t.Fatal(err)
		}
	}
	before := ts.store.KeysScanned()
	ts.token = ""
	for range 20 {
		if status, _, body := ts.do("GET", "/readyz", "", nil); status != http.StatusOK {
			t.Fatalf("/readyz: %d %s", status, body)
		}
	}
	if n := ts.store.KeysScanned() - before; n != 0 {
		t.Fatalf("20 /readyz requests scanned %d keys, want 0", n)
	}
	// The counter counts: a listing scans.
	if _, err := ts.store.Stats(); err != nil || ts.store.KeysScanned()-before < 200 {
		t.Fatalf("Stats scanned %d keys (%v), want ≥ 200", ts.store.KeysScanned()-before, err)
	}
}

// TestRefusalLogBucket: a burst, then the rate; the next line written
// carries the count of those left out.
func TestRefusalLogBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newLogBucket(nil, 1, 3)
	b.now = func() time.Time { return now }
	b.last = now
	written := 0
	for range 100 {
		if ok, _ := b.allow(); ok {
			written++
		}
	}
	if written != 3 {
		t.Fatalf("%d lines written of 100 in one instant, want the burst of 3", written)
	}
	now = now.Add(2 * time.Second)
	ok, suppressed := b.allow()
	if !ok || suppressed != 97 {
		t.Fatalf("after 2 s: ok %v, suppressed %d, want true, 97", ok, suppressed)
	}
	if ok, _ := b.allow(); !ok {
		t.Fatal("the second token of the refill was not available")
	}
	if ok, _ := b.allow(); ok {
		t.Fatal("more than the refill was available")
	}
}

// TestUploadValidationBusy: when the validation children hold their
// memory, an upload is answered 429 with Retry-After, not 500.
func TestUploadValidationBusy(t *testing.T) {
	busy := func(ctx context.Context, code []byte) (wasm.ModuleInfo, error) {
		return wasm.ModuleInfo{}, fmt.Errorf("%w: upload validation is at its limit", wasm.ErrBusy)
	}
	ts := newTestServer(t, Config{Inspect: busy})
	body := "--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nf\r\n" +
		"--b\r\nContent-Disposition: form-data; name=\"code\"; filename=\"f.wasm\"\r\n\r\n" + string(minimalFunless) + "\r\n--b--\r\n"
	status, h, resp := ts.do("POST", "/v1/fn/_", "multipart/form-data; boundary=b", strings.NewReader(body))
	if status != http.StatusTooManyRequests || h.Get("Retry-After") != "1" || !strings.Contains(resp, "retry") && !strings.Contains(resp, "limit") {
		t.Fatalf("%d %v %s, want 429 with Retry-After", status, h, resp)
	}
}

// TestMetadataWithinWorkerLimits: metadata the workers refuse used to be
// accepted at upload and then failed every call with 500.
func TestMetadataWithinWorkerLimits(t *testing.T) {
	ts := newTestServer(t, Config{})
	hello := testmodules.Read(t, "hello") // Go: declares a minimum of 42 pages
	upload := func(method, path, name string, code []byte, md string) (int, string) {
		t.Helper()
		body := ""
		if name != "" {
			body += "--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n" + name + "\r\n"
		}
		if code != nil {
			body += "--b\r\nContent-Disposition: form-data; name=\"code\"; filename=\"f.wasm\"\r\n\r\n" + string(code) + "\r\n"
		}
		if md != "" {
			body += "--b\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n" + md + "\r\n"
		}
		status, _, resp := ts.do(method, path, "multipart/form-data; boundary=b", strings.NewReader(body+"--b--\r\n"))
		return status, resp
	}
	for md, want := range map[string]string{
		`{"timeout_ms":3600000}`:           "900000",
		`{"timeout_ms":900001}`:            "900000",
		`{"capacity":1}`:                   "minimum memory of 42 pages",
		`{"capacity":2}`:                   "at least 3",
		`{"capacity":1025}`:                "at most 1024",
		`{"capacity":9223372036854775807}`: "at most 1024",
	} {
		if status, resp := upload("POST", "/v1/fn/_", "f", hello, md); status != http.StatusBadRequest || !strings.Contains(resp, want) {
			t.Errorf("metadata %s: %d %s, want 400 containing %q", md, status, resp, want)
		}
	}
	if status, resp := upload("POST", "/v1/fn/_", "f", hello, `{"capacity":3,"timeout_ms":900000}`); status != http.StatusCreated {
		t.Fatalf("capacity 3, timeout 15 min: %d %s", status, resp)
	}
	// A metadata-only update is checked against the stored code.
	if status, resp := upload("PUT", "/v1/fn/_/f", "", nil, `{"capacity":1}`); status != http.StatusBadRequest || !strings.Contains(resp, "42 pages") {
		t.Fatalf("update to capacity 1: %d %s, want 400", status, resp)
	}
	if status, resp := upload("PUT", "/v1/fn/_/f", "", nil, `{"capacity":1024}`); status != http.StatusOK {
		t.Fatalf("update to capacity 1024: %d %s", status, resp)
	}
	// A code-only update keeps the metadata, and is checked against it.
	if status, resp := upload("PUT", "/v1/fn/_/f", "", minimalFunless, ""); status != http.StatusOK {
		t.Fatalf("code update: %d %s", status, resp)
	}
}
