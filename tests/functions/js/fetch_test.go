package js_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// serve runs handler on a new listener at addr (a loopback address) until
// the test ends, and returns its host:port.
func serve(t *testing.T, addr string, handler http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

type fetched struct {
	OK     bool            `json:"ok"`
	Status int             `json:"status"`
	Text   string          `json:"text"`
	JSON   json.RawMessage `json:"json"`
	Error  string          `json:"error"`
}

func fetchCall(t *testing.T, name, args string) fetched {
	t.Helper()
	out, err := invoke(t, name, args)
	if err != nil {
		t.Fatalf("%s %s: %v", name, args, err)
	}
	var f fetched
	if err := json.Unmarshal([]byte(out), &f); err != nil {
		t.Fatalf("%s: %q: %v", name, out, err)
	}
	return f
}

// TestFetch: fetch() reaches a server the function's allow-list grants
// and the worker's network opens (127.0.0.2) with the method, headers and
// body given, resolving to its status and body; an internal address
// (127.0.0.1, granted by the function but not opened by the worker) and a
// host the function does not grant are refused, as a rejected Promise the
// function catches, and never reached.
func TestFetch(t *testing.T) {
	var refusedHits atomic.Int64
	allowed := serve(t, "127.0.0.2:0", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/json" {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"n":7}`)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprintf(w, "%s %s %s", r.Method, r.Header.Get("X-Test"), b)
	}))
	internal := serve(t, "127.0.0.1:0", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		refusedHits.Add(1)
		fmt.Fprint(w, "secret")
	}))
	deploy(t, "js_fetch", "fetch.mjs", "--allow-host", allowed, "--allow-host", internal)

	f := fetchCall(t, "js_fetch", fmt.Sprintf(`{"url":"http://%s/echo","method":"POST","body":"hello"}`, allowed))
	if !f.OK || f.Status != 202 || f.Text != "POST js hello" || f.Error != "" {
		t.Fatalf("fetch of the allowed server: %+v", f)
	}
	f = fetchCall(t, "js_fetch", fmt.Sprintf(`{"url":"http://%s/json","json":true}`, allowed))
	if f.Status != 200 || string(f.JSON) != `{"n":7}` {
		t.Fatalf("fetch().json(): %+v", f)
	}
	f = fetchCall(t, "js_fetch", fmt.Sprintf(`{"url":"http://%s/"}`, internal))
	if !strings.HasPrefix(f.Error, "TypeError: fetch failed") || !strings.Contains(f.Error, "internal address") {
		t.Fatalf("fetch of an internal address: %+v", f)
	}
	f = fetchCall(t, "js_fetch", `{"url":"http://127.0.0.2:9/"}`)
	if !strings.HasPrefix(f.Error, "TypeError: fetch failed") || !strings.Contains(f.Error, "not allowed") {
		t.Fatalf("fetch of a host the function does not grant: %+v", f)
	}
	if n := refusedHits.Load(); n != 0 {
		t.Fatalf("the internal server was reached %d times", n)
	}
}

// TestFetchHoldsNoSlot: a function waiting for fetch holds no CPU slot.
// Eight calls at once on this worker (as many slots as CPUs, 2 on the
// test machine) each fetch from a server that answers none until it holds
// all eight requests: holding a slot each, at most two would ever be
// there.
func TestFetchHoldsNoSlot(t *testing.T) {
	const n = 8
	var mu sync.Mutex
	inflight, most := 0, 0
	all := make(chan struct{})
	server := serve(t, "127.0.0.2:0", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		inflight++
		most = max(most, inflight)
		if inflight == n {
			close(all)
		}
		mu.Unlock()
		select { // a bound for a failing run only: the test asserts the count
		case <-all:
		case <-time.After(30 * time.Second):
		}
		fmt.Fprint(w, "done")
	}))
	deploy(t, "js_fetch_wait", "fetch.mjs", "--allow-host", server, "--timeout", "2m")
	args := fmt.Sprintf(`{"url":"http://%s/"}`, server)
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if f := fetchCall(t, "js_fetch_wait", args); f.Text != "done" {
				t.Errorf("a waiting fetch: %+v", f)
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if most != n {
		t.Fatalf("at most %d of %d fetches reached the server at once: waiting holds a CPU slot", most, n)
	}
}
