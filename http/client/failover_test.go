package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/edgefaas/edgefaas/http/client"
)

// fakeCore is an httptest server that counts the requests it received
// and answers them with answer.
type fakeCore struct {
	*httptest.Server
	hits atomic.Int64
}

func newFakeCore(t *testing.T, answer http.HandlerFunc) *fakeCore {
	t.Helper()
	f := &fakeCore{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.hits.Add(1)
		io.Copy(io.Discard, r.Body)
		answer(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// okData answers 200 with {"data":data}.
func okData(data string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"data":`+data+`}`)
	}
}

// groupRefusal answers a write the group could not take: 503 with
// Retry-After and the outcome ("refused": not applied; "unknown").
func groupRefusal(outcome string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Edgefaas-Group-Write", outcome)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"errors":{"detail":"Service Unavailable: no core of the group leads"}}`)
	}
}

// hangUp reads the request and closes the connection without answering:
// the request reached the core, which may have acted on it.
func hangUp(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	}
}

// cutMidAnswer starts a 200 answer and closes the connection before its
// end.
func cutMidAnswer(t *testing.T) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"data":`)
		http.NewResponseController(w).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		conn.Close()
	}
}

// refusedAddr is a loopback address nothing listens on: a dial there is
// refused, so the request surely reached no core.
func refusedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close()
	return addr
}

func cores(urls ...string) string { return strings.Join(urls, ",") }

func TestNewTakesSeveralCores(t *testing.T) {
	c, err := client.New(" http://127.0.0.1:4000/ , 127.0.0.2:4000,https://h:4000", "tok")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range c.Cores {
		got = append(got, u.String())
	}
	if want := "http://127.0.0.1:4000 http://127.0.0.2:4000 https://h:4000"; strings.Join(got, " ") != want {
		t.Fatalf("cores %q, want %s", got, want)
	}
	for _, bad := range []string{"http://a:1,,http://b:1", "http://a:1,http://a:1/", "http://a:1,ftp://b"} {
		if _, err := client.New(bad, ""); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}

// A core that cannot be dialled is skipped for every method, an
// invocation too; the next call goes straight to the core that answered.
func TestDialErrorFailsOverAndSticks(t *testing.T) {
	b := newFakeCore(t, okData(`{"message":"hi"}`))
	c := mustClient(t, cores(refusedAddr(t), b.URL), "tok")
	ctx := context.Background()
	out, err := c.Invoke(ctx, "_", "hello", nil)
	if err != nil || string(out) != `{"message":"hi"}` {
		t.Fatalf("invoke with the first core down: %s %v", out, err)
	}
	if c.Core().String() != b.URL {
		t.Fatalf("core in use %s, want %s", c.Core(), b.URL)
	}
	if _, err := c.Invoke(ctx, "_", "hello", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Invoke(ctx, "_", "hello", nil); err != nil {
		t.Fatal(err)
	}
	if n := b.hits.Load(); n != 3 {
		t.Fatalf("the second core got %d requests, want 3", n)
	}
}

// Every core unreachable: one error that names them.
func TestAllCoresUnreachable(t *testing.T) {
	a, b := refusedAddr(t), refusedAddr(t)
	c := mustClient(t, cores(a, b), "tok")
	err := c.Ping(context.Background())
	var ue *client.UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), a) || !strings.Contains(err.Error(), b) {
		t.Fatalf("all cores down: %v", err)
	}
}

// A write the group refused without applying it (no leader) goes to the
// next core, a POST too; when every core refuses, the last refusal is
// the answer.
func TestGroupRefusalFailsOver(t *testing.T) {
	a := newFakeCore(t, groupRefusal("refused"))
	b := newFakeCore(t, okData(`null`))
	c := mustClient(t, cores(a.URL, b.URL), "tok")
	if err := c.CreateModule(context.Background(), "demo"); err != nil {
		t.Fatalf("create through a refusing core, then the next: %v", err)
	}
	if a.hits.Load() != 1 || b.hits.Load() != 1 {
		t.Fatalf("hits %d, %d; want 1, 1", a.hits.Load(), b.hits.Load())
	}
	if c.Core().String() != b.URL {
		t.Fatalf("core in use %s, want %s", c.Core(), b.URL)
	}

	x := newFakeCore(t, groupRefusal("refused"))
	y := newFakeCore(t, groupRefusal("refused"))
	c = mustClient(t, cores(x.URL, y.URL), "tok")
	err := c.CreateModule(context.Background(), "demo")
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || ae.RetryAfter != "1" || ae.GroupWrite != client.GroupWriteRefused {
		t.Fatalf("every core refuses: %v (%+v)", err, ae)
	}
	if x.hits.Load() != 1 || y.hits.Load() != 1 {
		t.Fatalf("hits %d, %d; want each core tried once", x.hits.Load(), y.hits.Load())
	}
	// A refusal and a core down: the refusal is the answer.
	c = mustClient(t, cores(x.URL, refusedAddr(t)), "tok")
	if err := c.CreateModule(context.Background(), "demo"); !client.IsStatus(err, http.StatusServiceUnavailable) {
		t.Fatalf("one core refuses, the other is down: %v, want the refusal", err)
	}
}

// A write whose outcome is unknown (the leader was lost after taking it)
// is not sent again by POST; an idempotent method (PUT, DELETE) is.
func TestUnknownOutcomeRetriesOnlyIdempotent(t *testing.T) {
	a := newFakeCore(t, groupRefusal("unknown"))
	b := newFakeCore(t, okData(`null`))
	c := mustClient(t, cores(a.URL, b.URL), "tok")
	ctx := context.Background()
	err := c.CreateModule(ctx, "demo")
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || ae.GroupWrite != client.GroupWriteUnknown {
		t.Fatalf("POST with an unknown outcome: %v (%+v), want the 503 saying unknown", err, ae)
	}
	if b.hits.Load() != 0 {
		t.Fatalf("POST with an unknown outcome was sent to the next core")
	}
	if err := c.DeleteModule(ctx, "demo"); err != nil {
		t.Fatalf("DELETE with an unknown outcome, then the next core: %v", err)
	}
	if b.hits.Load() != 1 {
		t.Fatalf("DELETE reached the next core %d times, want 1", b.hits.Load())
	}
}

// An invocation that reached a core is never sent to another: not when
// the connection closes before the answer, not when the answer is cut.
// A read is.
func TestInvokeNotRetriedOnceSent(t *testing.T) {
	for name, answer := range map[string]http.HandlerFunc{"hang up": hangUp(t), "cut answer": cutMidAnswer(t)} {
		t.Run(name, func(t *testing.T) {
			a := newFakeCore(t, answer)
			b := newFakeCore(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet {
					okData(`[]`)(w, r)
					return
				}
				okData(`{"message":"twice"}`)(w, r)
			})
			c := mustClient(t, cores(a.URL, b.URL), "tok")
			ctx := context.Background()
			if out, err := c.Invoke(ctx, "_", "hello", json.RawMessage(`{}`)); err == nil {
				t.Fatalf("invoke: %s, want the error of the first core", out)
			}
			if b.hits.Load() != 0 {
				t.Fatalf("an invocation that reached a core was sent to another")
			}
			if _, err := c.ListModules(ctx); err != nil {
				t.Fatalf("a read after the first core failed: %v", err)
			}
			if a.hits.Load() != 2 || b.hits.Load() != 1 {
				t.Fatalf("hits %d, %d; want 2 (invoke, read), 1 (read)", a.hits.Load(), b.hits.Load())
			}
		})
	}
}

// Other answers are the core's, not a reason to fail over: a 404, and a
// 503 of an invocation (no worker), which may have run.
func TestOtherAnswersDoNotFailOver(t *testing.T) {
	a := newFakeCore(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"errors":{"detail":"no worker available"}}`)
	})
	b := newFakeCore(t, okData(`null`))
	c := mustClient(t, cores(a.URL, b.URL), "tok")
	if _, err := c.Invoke(context.Background(), "_", "hello", nil); !client.IsStatus(err, http.StatusServiceUnavailable) {
		t.Fatalf("invoke answered 503 by the core: %v", err)
	}
	if b.hits.Load() != 0 {
		t.Fatalf("an invocation answered 503 by a core was sent to another")
	}
}
