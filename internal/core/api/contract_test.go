package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// These tests run the real handler on a loopback listener over a real
// pebble directory. What they stand in for is the cluster, which does not
// exist in this package: a scripted Invoker and a recording Notifier check
// the contract the cluster will implement.

// scriptedInvoker answers each invocation with the next scripted result.
type scriptedInvoker struct {
	mu   sync.Mutex
	got  []cluster.InvokeRequest
	next func(req cluster.InvokeRequest) (cluster.InvokeResult, error)
}

func (s *scriptedInvoker) Invoke(ctx context.Context, req cluster.InvokeRequest) (cluster.InvokeResult, error) {
	s.mu.Lock()
	s.got = append(s.got, req)
	s.mu.Unlock()
	return s.next(req)
}

type recordingNotifier struct {
	mu     sync.Mutex
	events []cluster.FunctionEvent
}

func (n *recordingNotifier) FunctionChanged(ctx context.Context, ev cluster.FunctionEvent) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.events = append(n.events, ev)
	return errors.New("workers unreachable") // must be logged, not fail the request
}

type testServer struct {
	t      *testing.T
	url    string
	token  string // the admin subject "tester"'s
	store  *storage.Store
	server *Server
}

func newTestServer(t *testing.T, cfg Config) *testServer {
	t.Helper()
	return newTestServerIn(t, t.TempDir(), cfg)
}

// newTestServerIn is newTestServer with its database in dir.
func newTestServerIn(t *testing.T, dir string, cfg Config) *testServer {
	t.Helper()
	st, err := storage.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	token, err := st.CreateSubject("tester", true)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store = st
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		hs.Close()
		st.Close()
	})
	return &testServer{t: t, url: hs.URL, token: token, store: st, server: s}
}

func (ts *testServer) do(method, path, ct string, body io.Reader) (int, http.Header, string) {
	ts.t.Helper()
	req, _ := http.NewRequest(method, ts.url+path, body)
	req.Header.Set("Authorization", "Bearer "+ts.token)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// minimalFunless is a hand-assembled funless-ABI module: it exports
// __invoke (i32) -> i32 returning 0, and nothing else.
var minimalFunless = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
	0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f, // type: (i32) -> i32
	0x03, 0x02, 0x01, 0x00, // function 0 has type 0
	0x07, 0x0c, 0x01, 0x08, '_', '_', 'i', 'n', 'v', 'o', 'k', 'e', 0x00, 0x00, // export "__invoke"
	0x0a, 0x06, 0x01, 0x04, 0x00, 0x41, 0x00, 0x0b, // code: i32.const 0; end
}

func (ts *testServer) create(name string, code []byte, extra string) {
	ts.t.Helper()
	body := "--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\n" + name + "\r\n" +
		"--b\r\nContent-Disposition: form-data; name=\"code\"; filename=\"f.wasm\"\r\n\r\n" + string(code) + "\r\n" + extra + "--b--\r\n"
	status, _, resp := ts.do("POST", "/v1/fn/_", "multipart/form-data; boundary=b", strings.NewReader(body))
	if status != http.StatusCreated {
		ts.t.Fatalf("create %s: %d %s", name, status, resp)
	}
}

func TestInvokerErrorsMapToStatuses(t *testing.T) {
	inv := &scriptedInvoker{}
	ts := newTestServer(t, Config{Invoker: inv})
	ts.create("f", minimalFunless, "--b\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{\"capacity\":32}\r\n")

	cases := []struct {
		result cluster.InvokeResult
		err    error
		status int
		body   string
	}{
		{cluster.InvokeResult{Output: json.RawMessage(`{"sum":3}`)}, nil, 200, `{"data":{"sum":3}}`},
		{cluster.InvokeResult{Output: json.RawMessage(`"text"`)}, nil, 200, `{"data":"text"}`},
		{cluster.InvokeResult{}, cluster.ErrNoWorker, 503, `{"errors":{"detail":"No worker available"}}`},
		{cluster.InvokeResult{}, fmt.Errorf("schedule: %w", cluster.ErrNoWorker), 503, `{"errors":{"detail":"No worker available"}}`},
		{cluster.InvokeResult{}, &cluster.FunctionError{Message: "division by zero"}, 422, `{"errors":{"detail":"division by zero"}}`},
		{cluster.InvokeResult{}, fmt.Errorf("worker w1: %w", &cluster.FunctionError{Message: "bad input"}), 422, `"bad input"`},
		{cluster.InvokeResult{}, cluster.ErrBusy, 429, "busy"},
		{cluster.InvokeResult{}, &cluster.BusyError{Reason: "engine busy (memory budget of 112 MiB spent)"}, 429,
			`is busy (engine busy (memory budget of 112 MiB spent)); retry shortly`},
		{cluster.InvokeResult{}, cluster.ErrTimeout, 504, "timeout"},
		{cluster.InvokeResult{}, context.DeadlineExceeded, 504, "timeout"},
		{cluster.InvokeResult{}, errors.New("wasm trap: unreachable"), 500, "Internal Server Error"},
	}
	for _, c := range cases {
		inv.next = func(cluster.InvokeRequest) (cluster.InvokeResult, error) { return c.result, c.err }
		status, h, body := ts.do("POST", "/v1/fn/_/f", "application/json", strings.NewReader(`{"args":{"a":1}}`))
		if status != c.status || !strings.Contains(body, c.body) {
			t.Errorf("invoker (%s, %v): got %d %s, want %d containing %s", c.result.Output, c.err, status, body, c.status, c.body)
		}
		if c.status == 429 && h.Get("Retry-After") == "" {
			t.Error("429 without Retry-After")
		}
		if strings.Contains(body, "trap") {
			t.Errorf("internal error text leaked to the client: %s", body)
		}
	}
	req := inv.got[0]
	if req.Function.Name != "f" || req.Function.Hash != storage.HashCode(minimalFunless) || req.Function.ABI != "funless" ||
		req.Function.Metadata.Capacity != 32 || string(req.Args) != `{"a":1}` || req.Subject != "tester" {
		t.Errorf("invoker got %+v args %s", req.Function, req.Args)
	}
	code, err := ts.store.Code(req.Function.Hash)
	if err != nil || string(code) != string(minimalFunless) {
		t.Errorf("code by hash: %v", err)
	}
}

func TestNotifierEvents(t *testing.T) {
	n := &recordingNotifier{}
	ts := newTestServer(t, Config{Notifier: n})
	ts.create("f", minimalFunless, "--b\r\nContent-Disposition: form-data; name=\"wait_for_workers\"\r\n\r\nfalse\r\n")
	v2 := append(append([]byte(nil), minimalFunless...), 0x00, 0x03, 0x01, 'x', '!') // custom section: new hash
	body := "--b\r\nContent-Disposition: form-data; name=\"code\"\r\n\r\n" + string(v2) + "\r\n--b--\r\n"
	if status, _, resp := ts.do("PUT", "/v1/fn/_/f", "multipart/form-data; boundary=b", strings.NewReader(body)); status != 200 {
		t.Fatalf("update: %d %s", status, resp)
	}
	if status, _, resp := ts.do("DELETE", "/v1/fn/_/f", "", nil); status != 204 {
		t.Fatalf("delete: %d %s", status, resp)
	}
	if len(n.events) != 3 {
		t.Fatalf("events %+v", n.events)
	}
	h1, h2 := storage.HashCode(minimalFunless), storage.HashCode(v2)
	e := n.events
	if e[0].Kind != cluster.FunctionCreated || e[0].Function.Hash != h1 || e[0].WaitForWorkers || e[0].Previous != nil {
		t.Errorf("create event %+v", e[0])
	}
	if e[1].Kind != cluster.FunctionUpdated || e[1].Function.Hash != h2 || e[1].Previous == nil || e[1].Previous.Hash != h1 || !e[1].WaitForWorkers || e[1].Function.Version != 2 {
		t.Errorf("update event %+v", e[1])
	}
	if e[2].Kind != cluster.FunctionDeleted || e[2].Function.Hash != h2 {
		t.Errorf("delete event %+v", e[2])
	}
}

func TestReadiness(t *testing.T) {
	var ready error = errors.New("no worker connected")
	ts := newTestServer(t, Config{Ready: func() error { return ready }})
	status, _, body := ts.do("GET", "/readyz", "", nil)
	if status != 503 || !strings.Contains(body, "no worker connected") {
		t.Errorf("readyz without workers: %d %s", status, body)
	}
	ready = nil
	if status, _, body := ts.do("GET", "/readyz", "", nil); status != 200 {
		t.Errorf("readyz with workers: %d %s", status, body)
	}
}

// panickingInvoker stands for a cluster bug: the API must still answer.
type panickingInvoker struct{}

func (panickingInvoker) Invoke(context.Context, cluster.InvokeRequest) (cluster.InvokeResult, error) {
	panic("cluster bug")
}

func TestPanicBecomes500(t *testing.T) {
	ts := newTestServer(t, Config{Invoker: panickingInvoker{}})
	ts.create("f", minimalFunless, "")
	status, _, body := ts.do("POST", "/v1/fn/_/f", "application/json", strings.NewReader(`{}`))
	if status != 500 || !strings.Contains(body, `"detail"`) || strings.Contains(body, "cluster bug") {
		t.Errorf("panic: %d %s", status, body)
	}
	// The server still works.
	if status, _, body := ts.do("GET", "/v1/fn/_/f", "", nil); status != 200 {
		t.Errorf("after panic: %d %s", status, body)
	}
}
