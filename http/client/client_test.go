package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/core/api"
	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/testing/storetest"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

// echoInvoker answers with the args, or a function error for "fails".
type echoInvoker struct{}

func (echoInvoker) Invoke(_ context.Context, req cluster.InvokeRequest) (cluster.InvokeResult, error) {
	switch req.Function.Name {
	case "fails":
		return cluster.InvokeResult{}, &cluster.FunctionError{Message: "the answer is not 42"}
	case "busy":
		return cluster.InvokeResult{}, cluster.ErrBusy
	}
	return cluster.InvokeResult{Output: req.Args}, nil
}

// platform is the real API over a real store, in process.
type platform struct {
	url          string
	admin, guest string
}

func newPlatform(t *testing.T) platform {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store := storetest.Open(t, filepath.Join(dir, "db"), log)
	tokens := filepath.Join(dir, "tokens")
	if _, err := store.Bootstrap(tokens); err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Store: store, Logger: log, Invoker: echoInvoker{}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	p := platform{url: hs.URL}
	raw, err := os.ReadFile(tokens)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "Admin="); ok {
			p.admin = v
		}
		if v, ok := strings.CutPrefix(line, "Guest="); ok {
			p.guest = v
		}
	}
	return p
}

func mustClient(t *testing.T, host, token string) *client.Client {
	t.Helper()
	c, err := client.New(host, token)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantAPIError requires an *Error with the status and a detail containing
// want.
func wantAPIError(t *testing.T, what string, err error, status int, want string) {
	t.Helper()
	var ae *client.Error
	if !errors.As(err, &ae) {
		t.Fatalf("%s: error %v (%T), want *client.Error %d", what, err, err, status)
	}
	if ae.Status != status || !strings.Contains(ae.Detail, want) || err.Error() != ae.Detail {
		t.Errorf("%s: got %d %q, want %d containing %q", what, ae.Status, ae.Detail, status, want)
	}
	if !client.IsStatus(err, status) {
		t.Errorf("%s: IsStatus(%d) is false", what, status)
	}
}

func TestFunctionsAndModules(t *testing.T) {
	p := newPlatform(t)
	ctx := context.Background()
	c := mustClient(t, p.url, p.guest)
	if err := c.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateModule(ctx, "tools"); err != nil {
		t.Fatal(err)
	}
	wantAPIError(t, "duplicate module", c.CreateModule(ctx, "tools"), 409, `module "tools" already exists`)
	mods, err := c.ListModules(ctx)
	if err != nil || len(mods) != 2 {
		t.Fatalf("ListModules = %v, %v", mods, err)
	}

	code := testmodules.Read(t, "hello")
	var calls, dones int
	var last int64
	f, err := c.CreateFunction(ctx, "tools", client.Upload{
		Name: "hello", Code: code, Filename: "hello.wasm",
		Metadata:       &client.Metadata{Capacity: 16, TimeoutMS: 1500, AllowedHosts: []string{"example.com"}, Tag: "t"},
		WaitForWorkers: new(false),
		Progress: func(sent, total int64, done bool) {
			calls++
			last = sent
			if done {
				dones++
				if sent != total {
					t.Errorf("done at %d of %d bytes", sent, total)
				}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 || dones != 1 || last < int64(len(code)) {
		t.Errorf("progress: %d calls, %d done, last %d bytes for %d bytes of code", calls, dones, last, len(code))
	}
	if f.Module != "tools" || f.Name != "hello" || f.ABI != "funless" || f.Size != int64(len(code)) || f.Version != 1 ||
		f.Metadata.Capacity != 16 || f.Metadata.TimeoutMS != 1500 || f.Metadata.Tag != "t" || len(f.Metadata.AllowedHosts) != 1 {
		t.Errorf("CreateFunction = %+v", f)
	}
	_, err = c.CreateFunction(ctx, "tools", client.Upload{Name: "hello", Code: code})
	wantAPIError(t, "duplicate function", err, 409, "already exists")
	_, err = c.CreateFunction(ctx, "tools", client.Upload{Name: "bad", Code: []byte("\x00asm nonsense")})
	wantAPIError(t, "bad code", err, 400, "the code is refused")

	m, err := c.GetModule(ctx, "tools")
	if err != nil || len(m.Functions) != 1 || m.Functions[0].Name != "hello" {
		t.Errorf("GetModule = %+v, %v", m, err)
	}

	// Metadata-only update replaces the metadata and keeps the code.
	f, err = c.UpdateFunction(ctx, "tools", "hello", client.Upload{Metadata: &client.Metadata{TimeoutMS: 3000}})
	if err != nil || f.Version != 2 || f.Metadata.TimeoutMS != 3000 || f.Metadata.Capacity != 0 || f.Size != int64(len(code)) {
		t.Errorf("UpdateFunction = %+v, %v", f, err)
	}
	if _, err := c.UpdateFunction(ctx, "tools", "hello", client.Upload{}); err == nil {
		t.Error("an empty update was sent")
	}
	if g, err := c.GetFunction(ctx, "tools", "hello"); err != nil || g.Hash != f.Hash || g.Version != 2 {
		t.Errorf("GetFunction = %+v, %v", g, err)
	}

	out, err := c.Invoke(ctx, "tools", "hello", json.RawMessage(`{"name":"Ada"}`))
	if err != nil || string(out) != `{"name":"Ada"}` {
		t.Errorf("Invoke = %s, %v", out, err)
	}
	out, err = c.Invoke(ctx, "tools", "hello", nil)
	if err != nil || string(out) != `{}` {
		t.Errorf("Invoke with no args = %s, %v", out, err)
	}
	for _, name := range []string{"fails", "busy"} {
		if _, err := c.CreateFunction(ctx, "tools", client.Upload{Name: name, Code: code}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.Invoke(ctx, "tools", "fails", nil)
	wantAPIError(t, "function error", err, 422, "the answer is not 42")
	_, err = c.Invoke(ctx, "tools", "busy", nil)
	wantAPIError(t, "busy", err, 429, "busy")
	var ae *client.Error
	if errors.As(err, &ae) && ae.RetryAfter != "1" {
		t.Errorf("Retry-After = %q", ae.RetryAfter)
	}

	if err := c.RenameModule(ctx, "tools", "utils"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteFunction(ctx, "utils", "hello"); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetFunction(ctx, "utils", "hello")
	wantAPIError(t, "deleted function", err, 404, `function "hello" does not exist in module "utils"`)
	if err := c.DeleteModule(ctx, "utils"); err != nil {
		t.Fatal(err)
	}
	wantAPIError(t, "default module", c.DeleteModule(ctx, client.DefaultModule), 400, "cannot be deleted")

	// Names are escaped, not spliced into the path.
	_, err = c.GetFunction(ctx, "_", "../admin/subjects")
	wantAPIError(t, "escaped name", err, 404, "Not Found")
}

func TestSubjectsAndNodes(t *testing.T) {
	p := newPlatform(t)
	ctx := context.Background()
	a := mustClient(t, p.url, p.admin)
	cr, err := a.CreateSubject(ctx, "alice")
	if err != nil || cr.Name != "alice" || cr.Token == "" {
		t.Fatalf("CreateSubject = %+v, %v", cr, err)
	}
	alice := mustClient(t, p.url, cr.Token)
	if _, err := alice.ListModules(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = alice.ListSubjects(ctx)
	wantAPIError(t, "non-admin", err, 403, "Forbidden")
	cr2, err := a.RotateSubject(ctx, "alice")
	if err != nil || cr2.Token == cr.Token {
		t.Fatalf("RotateSubject = %+v, %v", cr2, err)
	}
	_, err = alice.ListModules(ctx)
	wantAPIError(t, "rotated token", err, 401, "Invalid token")
	if err := a.RevokeSubject(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	subs, err := a.ListSubjects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	revoked := false
	for _, s := range subs {
		revoked = revoked || s.Name == "alice" && s.Revoked
	}
	if !revoked || len(subs) != 3 {
		t.Errorf("ListSubjects = %+v", subs)
	}
	_, err = mustClient(t, p.url, "").ListModules(ctx)
	wantAPIError(t, "no token", err, 401, "Missing token")

	nodes, err := a.ListNodes(ctx)
	if err != nil || nodes == nil || len(nodes) != 0 {
		t.Errorf("ListNodes without a cluster = %#v, %v", nodes, err)
	}
	_, err = a.ConnectNode(ctx, "worker@127.0.0.1:4001")
	wantAPIError(t, "connect without a cluster", err, 503, "without a cluster")
}

func TestNodeDecoding(t *testing.T) {
	const body = `{"data":[{"name":"worker@10.0.0.7","arch":"arm64","os":"linux","tags":["pi"],
		"total_memory":1073741824,"free_memory":536870912,"load":0.25,"running":1,"queued":0,"max_running":4,
		"functions":["ab12","cd34"],"last_report":"2026-01-02T03:04:05Z","future_field":true}]}`
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/prefix/v1/nodes" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "wrong request "+r.URL.Path, http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, body)
	}))
	defer hs.Close()
	c := mustClient(t, hs.URL+"/prefix/", "tok")
	nodes, err := c.ListNodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := nodes[0]
	if len(nodes) != 1 || n.Name != "worker@10.0.0.7" || n.Arch != "arm64" || n.FreeMemory != 512<<20 || n.Load != 0.25 ||
		n.MaxRunning != 4 || len(n.Functions) != 2 || n.LastReport.Year() != 2026 || len(n.Tags) != 1 {
		t.Errorf("ListNodes = %+v", nodes)
	}
}

func TestErrorShapes(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/fn":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html><body><h1>502 Bad Gateway</h1></body></html>")
		case "/v1/admin/subjects":
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, "404 page not found\nmore\n")
		default:
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `not json`)
		}
	}))
	defer hs.Close()
	c := mustClient(t, hs.URL, "")
	ctx := context.Background()
	_, err := c.ListModules(ctx)
	wantAPIError(t, "html", err, 502, "the server answered 502 Bad Gateway")
	if strings.Contains(err.Error(), "<html>") {
		t.Errorf("the HTML body leaked into the message: %v", err)
	}
	_, err = c.ListSubjects(ctx)
	wantAPIError(t, "plain 404", err, 404, "is this an edgefaas core")
	if !strings.HasSuffix(err.Error(), ": 404 page not found") {
		t.Errorf("plain 404 message: %v", err)
	}
	if _, err := c.GetModule(ctx, "x"); err == nil || !strings.Contains(err.Error(), "not JSON") {
		t.Errorf("a non-JSON success answer gave %v", err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = mustClient(t, addr, "").ListModules(ctx)
	var ue *client.UnreachableError
	if !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), "cannot reach the edgefaas core at http://"+addr+": ") {
		t.Errorf("unreachable core: %v (%T)", err, err)
	}
}

func TestParseHost(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:4000":            "http://127.0.0.1:4000",
		"http://core:4000/":         "http://core:4000",
		"https://edge.example/api/": "https://edge.example/api",
		" localhost:4000 ":          "http://localhost:4000",
	} {
		u, err := client.ParseHost(in)
		if err != nil || u.String() != want {
			t.Errorf("ParseHost(%q) = %v, %v; want %s", in, u, err, want)
		}
	}
	for _, bad := range []string{"", "ftp://x", "http://", "http://h:1/?q=1", "http://%zz"} {
		if _, err := client.ParseHost(bad); err == nil {
			t.Errorf("ParseHost(%q) accepted", bad)
		}
	}
}
