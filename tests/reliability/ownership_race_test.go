package reliability_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// A handler checks who may change a function or module before it reads
// the request's body, and writes after. These tests hold a request at that
// point without any timing: the request is sent with "Expect:
// 100-continue", and the server answers "100 Continue" only when the
// handler first reads the body, that is after its check. While it waits,
// the resource is deleted and re-created by another tenant; then the body
// is sent. The late write must be refused and the other tenant's resource
// left as it is.

// held is a request whose handler has made its checks and waits for the
// body.
type held struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
	body []byte
}

// hold sends method path's headers and waits for the server's
// "100 Continue"; finish sends the body.
func hold(t *testing.T, core *testcluster.Core, method, path, token, contentType string, body []byte) *held {
	t.Helper()
	u, err := url.Parse(core.URL)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
		method, path, u.Host, token, contentType, len(body))
	h := &held{t: t, conn: conn, br: bufio.NewReader(conn), body: body}
	resp, err := http.ReadResponse(h.br, nil)
	if err != nil {
		t.Fatalf("%s %s: read the interim answer: %v", method, path, err)
	}
	if resp.StatusCode != http.StatusContinue {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("%s %s: answered %d before reading the body, want 100 Continue: %s", method, path, resp.StatusCode, b)
	}
	return h
}

// finish sends the body and returns the final answer.
func (h *held) finish() (int, string) {
	h.t.Helper()
	if _, err := h.conn.Write(h.body); err != nil {
		h.t.Fatalf("send the held body: %v", err)
	}
	resp, err := http.ReadResponse(h.br, nil)
	if err != nil {
		h.t.Fatalf("read the final answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// uploadForm is a multipart function upload.
func uploadForm(t *testing.T, name string, code []byte) (string, []byte) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if name != "" {
		mw.WriteField("name", name)
	}
	w, err := mw.CreateFormFile("code", "code.wasm")
	if err != nil {
		t.Fatal(err)
	}
	w.Write(code)
	mw.Close()
	return mw.FormDataContentType(), buf.Bytes()
}

// twoTenants starts a core and returns clients for alice and bob and
// their tokens.
func twoTenants(t *testing.T, core *testcluster.Core) (alice, bob *client.Client, aliceToken, bobToken string) {
	t.Helper()
	adm := core.Client(core.Admin)
	a, err := adm.CreateSubject(ctxT(t), "alice")
	if err != nil {
		t.Fatal(err)
	}
	b, err := adm.CreateSubject(ctxT(t), "bob")
	if err != nil {
		t.Fatal(err)
	}
	return core.Client(a.Token), core.Client(b.Token), a.Token, b.Token
}

// refusedLate fails unless a held write was refused as changed (409) or
// gone (404).
func refusedLate(t *testing.T, what string, status int, body string) {
	t.Helper()
	switch status {
	case http.StatusConflict:
		if !strings.Contains(body, "changed while the request was in progress") {
			t.Errorf("%s: 409 without the retry advice: %s", what, body)
		}
	case http.StatusNotFound:
	default:
		t.Errorf("%s: status %d, want 409 or 404: %s", what, status, body)
	}
}

// TestUpdateRacesDeleteAndRecreate: alice's PUT of her _/foo is held after
// its ownership check; she deletes _/foo and bob creates his own _/foo.
// Alice's late PUT must not become bob's code.
func TestUpdateRacesDeleteAndRecreate(t *testing.T) {
	core := testcluster.StartCore(t)
	core.StartWorker(t, "127.0.0.2")
	alice, bob, aliceToken, _ := twoTenants(t, core)
	aliceCode, bobCode := testmodules.Read(t, "test/echo"), testmodules.Read(t, "hello")
	if _, err := alice.CreateFunction(ctxT(t), "_", client.Upload{Name: "foo", Code: aliceCode}); err != nil {
		t.Fatal(err)
	}
	ct, body := uploadForm(t, "", aliceCode)
	h := hold(t, core, "PUT", "/v1/fn/_/foo", aliceToken, ct, body)
	if err := alice.DeleteFunction(ctxT(t), "_", "foo"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.CreateFunction(ctxT(t), "_", client.Upload{Name: "foo", Code: bobCode}); err != nil {
		t.Fatal(err)
	}
	args := json.RawMessage(`{"name":"bob"}`)
	before, err := bob.Invoke(ctxT(t), "_", "foo", args)
	if err != nil {
		t.Fatal(err)
	}
	status, answer := h.finish()
	refusedLate(t, "alice's late PUT", status, answer)
	f, err := bob.GetFunction(ctxT(t), "_", "foo")
	if err != nil {
		t.Fatal(err)
	}
	if f.Owner != "bob" || f.Version != 1 || f.Hash != storageHash(bobCode) {
		t.Errorf("bob's function after alice's late PUT: owner %q version %d hash %s, want bob, 1, %s", f.Owner, f.Version, f.Hash, storageHash(bobCode))
	}
	after, err := bob.Invoke(ctxT(t), "_", "foo", args)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("bob's function answers %s, it answered %s before alice's late PUT", after, before)
	}
}

// TestCreateRacesModuleRecreate: alice's POST of a function into her
// module m is held after its visibility check; she deletes m and bob
// creates his own m. Alice's function must not land in bob's module.
func TestCreateRacesModuleRecreate(t *testing.T) {
	core := testcluster.StartCore(t)
	alice, bob, aliceToken, _ := twoTenants(t, core)
	if err := alice.CreateModule(ctxT(t), "m"); err != nil {
		t.Fatal(err)
	}
	ct, body := uploadForm(t, "foo", testmodules.Read(t, "test/echo"))
	h := hold(t, core, "POST", "/v1/fn/m", aliceToken, ct, body)
	if err := alice.DeleteModule(ctxT(t), "m"); err != nil {
		t.Fatal(err)
	}
	if err := bob.CreateModule(ctxT(t), "m"); err != nil {
		t.Fatal(err)
	}
	status, answer := h.finish()
	refusedLate(t, "alice's late POST", status, answer)
	m, err := bob.GetModule(ctxT(t), "m")
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Functions) != 0 {
		t.Errorf("bob's new module holds %v after alice's late POST, want nothing", m.Functions)
	}
}

// TestCreateRacesSameName: alice's POST of _/foo is held; bob creates
// _/foo first. One wins; alice's answer does not say the name is another
// tenant's (404, as for every name she cannot see), and bob's function is
// unchanged.
func TestCreateRacesSameName(t *testing.T) {
	core := testcluster.StartCore(t)
	_, bob, aliceToken, _ := twoTenants(t, core)
	bobCode := testmodules.Read(t, "hello")
	ct, body := uploadForm(t, "foo", testmodules.Read(t, "test/echo"))
	h := hold(t, core, "POST", "/v1/fn/_", aliceToken, ct, body)
	if _, err := bob.CreateFunction(ctxT(t), "_", client.Upload{Name: "foo", Code: bobCode}); err != nil {
		t.Fatal(err)
	}
	status, answer := h.finish()
	if status != http.StatusNotFound || strings.Contains(answer, "exists") {
		t.Errorf("alice's late POST of bob's name: %d %s, want 404 that does not say the name exists", status, answer)
	}
	f, err := bob.GetFunction(ctxT(t), "_", "foo")
	if err != nil {
		t.Fatal(err)
	}
	if f.Owner != "bob" || f.Version != 1 || f.Hash != storageHash(bobCode) {
		t.Errorf("bob's function: owner %q version %d hash %s, want bob, 1, his code", f.Owner, f.Version, f.Hash)
	}
}

// TestRenameRacesModuleRecreate: alice's rename of her module m is held
// after its check; she deletes m and bob creates m with a function. The
// late rename must not move bob's module.
func TestRenameRacesModuleRecreate(t *testing.T) {
	core := testcluster.StartCore(t)
	alice, bob, aliceToken, _ := twoTenants(t, core)
	if err := alice.CreateModule(ctxT(t), "m"); err != nil {
		t.Fatal(err)
	}
	h := hold(t, core, "PUT", "/v1/fn/m", aliceToken, "application/json", []byte(`{"module":{"name":"taken"}}`))
	if err := alice.DeleteModule(ctxT(t), "m"); err != nil {
		t.Fatal(err)
	}
	if err := bob.CreateModule(ctxT(t), "m"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.CreateFunction(ctxT(t), "m", client.Upload{Name: "f", Code: testmodules.Read(t, "hello")}); err != nil {
		t.Fatal(err)
	}
	status, answer := h.finish()
	refusedLate(t, "alice's late rename", status, answer)
	m, err := bob.GetModule(ctxT(t), "m")
	if err != nil {
		t.Fatalf("bob's module m after alice's late rename: %v", err)
	}
	if len(m.Functions) != 1 || m.Functions[0].Name != "f" {
		t.Errorf("bob's module m holds %v, want f", m.Functions)
	}
	if _, err := core.Client(core.Admin).GetModule(ctxT(t), "taken"); err == nil {
		t.Error("module \"taken\" exists: alice's late rename moved bob's module")
	}
}

// TestModuleNameReuse: alice's records and queued calls of m/f stay hers
// when she deletes m and bob creates m/f: bob does not see her records,
// and her queued call does not run bob's function with her args.
func TestModuleNameReuse(t *testing.T) {
	core := testcluster.StartCore(t) // no worker yet: the async call stays queued
	alice, bob, _, _ := twoTenants(t, core)
	if err := alice.CreateModule(ctxT(t), "m"); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.CreateFunction(ctxT(t), "m", client.Upload{Name: "f", Code: testmodules.Read(t, "test/echo")}); err != nil {
		t.Fatal(err)
	}
	secret := json.RawMessage(`{"secret":"alice"}`)
	if _, err := alice.Invoke(ctxT(t), "m", "f", secret); err == nil {
		t.Fatal("a synchronous call with no worker succeeded")
	}
	queued, err := alice.InvokeAsync(ctxT(t), "m", "f", secret, "")
	if err != nil {
		t.Fatal(err)
	}
	var own []client.Activation
	err = wait.Until(context.Background(), 30*time.Second, "alice's 2 records of m are written", func() bool {
		own, err = alice.ListActivations(ctxT(t), client.ActivationFilter{Module: "m"})
		return err == nil && len(own) == 2
	})
	if err != nil {
		t.Fatalf("%v: alice sees %+v", err, own)
	}
	if err := alice.DeleteModule(ctxT(t), "m"); err != nil {
		t.Fatal(err)
	}
	if err := bob.CreateModule(ctxT(t), "m"); err != nil {
		t.Fatal(err)
	}
	if _, err := bob.CreateFunction(ctxT(t), "m", client.Upload{Name: "f", Code: testmodules.Read(t, "test/echo")}); err != nil {
		t.Fatal(err)
	}
	seen, err := bob.ListActivations(ctxT(t), client.ActivationFilter{Module: "m"})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 0 {
		t.Errorf("bob sees %d records of alice's deleted module m: %+v", len(seen), seen)
	}
	core.StartWorker(t, "127.0.0.2")
	var rec client.Activation
	err = wait.Until(context.Background(), 60*time.Second, "alice's queued call ends", func() bool {
		rec, err = alice.GetActivation(ctxT(t), queued)
		return err == nil && rec.Status != "queued" && rec.Status != "running"
	})
	if err != nil {
		t.Fatalf("%v (last record %+v)", err, rec)
	}
	if rec.Status == "success" || strings.Contains(string(rec.Result), "alice") {
		t.Errorf("alice's queued call of her deleted m/f ran bob's m/f: status %s result %s", rec.Status, rec.Result)
	}
	if _, err := bob.GetActivation(ctxT(t), queued); err == nil {
		t.Error("bob reads alice's queued call's record")
	}
}
