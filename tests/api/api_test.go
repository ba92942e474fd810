package api_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

func TestPublicEndpoints(t *testing.T) {
	c := startCore(t, t.TempDir(), nil)
	r := c.do("GET", "/v1/", "", "", nil)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), "up") {
		t.Errorf("GET /v1/: %d %q", r.status, r.body)
	}
	if r := c.do("GET", "/healthz", "", "", nil); r.status != http.StatusOK {
		t.Errorf("GET /healthz: %d %s", r.status, r.body)
	}
	// Ready means storage open and a worker connected: a bare core is not.
	expect(t, "GET /readyz without workers", c.do("GET", "/readyz", "", "", nil), http.StatusServiceUnavailable, "no worker connected")
	boxDir := t.TempDir()
	box := startCore(t, boxDir, nil, "--data-dir", boxDir, "--http-addr", "127.0.0.1:0", "--with-worker")
	// The local worker reports within a second.
	if err := wait.Until(context.Background(), 5*time.Second, "GET /readyz on a core with its own worker is 200", func() bool {
		return box.do("GET", "/readyz", "", "", nil).status == http.StatusOK
	}); err != nil {
		t.Error(err)
	}
	expect(t, "unknown path", c.do("GET", "/v2/nothing", c.admin, "", nil), http.StatusNotFound, "no endpoint")
	r = c.do("PATCH", "/v1/fn", c.admin, "", nil)
	expect(t, "PATCH /v1/fn", r, http.StatusMethodNotAllowed, "PATCH")
	if allow := r.header.Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "POST") {
		t.Errorf("405 Allow header = %q", allow)
	}
}

// authRoutes lists every route that needs a token, with a body good enough
// to pass decoding. admin marks admin-only routes.
var authRoutes = []struct {
	method, path string
	admin        bool
}{
	{"GET", "/metrics", false},
	{"GET", "/v1/admin/subjects", true},
	{"POST", "/v1/admin/subjects", true},
	{"PUT", "/v1/admin/subjects/guest", true},
	{"DELETE", "/v1/admin/subjects/guest", true},
	{"GET", "/v1/fn", false},
	{"POST", "/v1/fn", false},
	{"GET", "/v1/fn/owned", false},
	{"PUT", "/v1/fn/owned", false},
	{"DELETE", "/v1/fn/owned", false},
	{"POST", "/v1/fn/owned", false},
	{"GET", "/v1/fn/owned/f", false},
	{"PUT", "/v1/fn/owned/f", false},
	{"DELETE", "/v1/fn/owned/f", false},
	{"POST", "/v1/fn/owned/f", false},
}

func TestAuthOnEveryRoute(t *testing.T) {
	c := startCore(t, t.TempDir(), nil)
	alice := c.createSubject("alice")
	bob := c.createSubject("bob")
	c.createModule(alice, "owned")
	c.createFunction(alice, "owned", "f", echoWasm, "")
	revoked := c.createSubject("gone")
	if r := c.do("DELETE", "/v1/admin/subjects/gone", c.admin, "", nil); r.status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	countBefore := c.metric("edgefaas_functions")

	for _, rt := range authRoutes {
		name := rt.method + " " + rt.path
		expect(t, name+" without token", c.do(rt.method, rt.path, "", "", nil), http.StatusUnauthorized, "Missing token")
		expect(t, name+" with a wrong token", c.do(rt.method, rt.path, "not-a-real-token", "", nil), http.StatusUnauthorized, "Invalid token")
		expect(t, name+" with a revoked token", c.do(rt.method, rt.path, revoked, "", nil), http.StatusUnauthorized, "Invalid token")
		req := c.do(rt.method, rt.path, "", "", nil)
		if req.header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", name)
		}
		// A malformed Authorization header.
		hr, _ := http.NewRequest(rt.method, c.url+rt.path, nil)
		hr.Header.Set("Authorization", "Basic "+alice)
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s with Basic auth: %d, want 401", name, resp.StatusCode)
		}
		if rt.admin {
			expect(t, name+" with a subject's token", c.do(rt.method, rt.path, alice, "", nil), http.StatusForbidden, "admin")
		} else if strings.Contains(rt.path, "owned") {
			// Another subject's module is invisible: 404, not 403, so
			// that names do not leak.
			expect(t, name+" with another subject's token", c.do(rt.method, rt.path, bob, "", nil), http.StatusNotFound, "does not exist")
		}
	}
	// None of the refused requests changed anything.
	if got := c.metric("edgefaas_functions"); got != countBefore {
		t.Errorf("functions %s after refused requests, was %s", got, countBefore)
	}
	r := c.json("GET", "/v1/fn/owned/f", alice, "")
	expect(t, "owner still reads its function", r, http.StatusOK, "")
	// Token scheme is case-insensitive ("bearer").
	hr, _ := http.NewRequest("GET", c.url+"/v1/fn", nil)
	hr.Header.Set("Authorization", "bearer "+alice)
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("lower-case bearer: %d", resp.StatusCode)
	}
}

func TestModules(t *testing.T) {
	c := startCore(t, t.TempDir(), nil)
	g := c.guest

	var mods []struct{ Name string }
	c.json("GET", "/v1/fn", g, "").data(t, &mods)
	if len(mods) != 1 || mods[0].Name != "_" {
		t.Errorf("initial modules = %+v, want only _", mods)
	}

	r := c.json("POST", "/v1/fn", g, `{"module":{"name":"math"}}`)
	expect(t, "create", r, http.StatusCreated, "")
	var created struct{ Name string }
	r.data(t, &created)
	if created.Name != "math" {
		t.Errorf("created %+v", created)
	}
	expect(t, "duplicate", c.json("POST", "/v1/fn", g, `{"module":{"name":"math"}}`), http.StatusConflict, "already exists")
	expect(t, "create _", c.json("POST", "/v1/fn", g, `{"module":{"name":"_"}}`), http.StatusConflict, "already exists")

	for body, want := range map[string]string{
		`{"module":{"name":"a-b"}}`:                              "only letters, digits and _",
		`{"module":{"name":""}}`:                                 "empty",
		`{"module":{"name":"` + strings.Repeat("a", 161) + `"}}`: "limit is 160",
		`{"module":{"name":5}}`:                                  `"module.name" must be a string`,
		`{"module":{"name":"x","owner":"y"}}`:                    `unknown field "owner"`,
		`{"module":{"name":"x"},"extra":1}`:                      `unknown field "extra"`,
		`{"module":{"name":"x"}} {}`:                             "unexpected data",
		`{"module":`:                                             "truncated",
		`not json`:                                               "invalid JSON",
		`{}`:                                                     `{"module":{"name":"..."}}`,
		`{"module":null}`:                                        `{"module":{"name":"..."}}`,
		`[]`:                                                     "expected an object",
		``:                                                       "empty",
	} {
		expect(t, "create "+body, c.json("POST", "/v1/fn", g, body), http.StatusBadRequest, want)
	}
	expect(t, "160-character name", c.json("POST", "/v1/fn", g, `{"module":{"name":"`+strings.Repeat("a", 160)+`"}}`), http.StatusCreated, "")
	big := `{"module":{"name":"` + strings.Repeat("a", 70<<10) + `"}}`
	expect(t, "huge body", c.json("POST", "/v1/fn", g, big), http.StatusRequestEntityTooLarge, "limit")

	c.createFunction(g, "math", "add", echoWasm, `{"tag":"t"}`)
	var mod struct {
		Name      string
		Functions []struct{ Name string }
	}
	c.json("GET", "/v1/fn/math", g, "").data(t, &mod)
	if mod.Name != "math" || len(mod.Functions) != 1 || mod.Functions[0].Name != "add" {
		t.Errorf("GET /v1/fn/math = %+v", mod)
	}
	// FunLess's shape: each function is {"name"} and nothing more.
	var raw struct{ Functions []map[string]any }
	c.json("GET", "/v1/fn/math", g, "").data(t, &raw)
	if len(raw.Functions) != 1 || len(raw.Functions[0]) != 1 {
		t.Errorf("GET /v1/fn/math functions = %v, want names only", raw.Functions)
	}
	// ?details=true: the records GET /v1/fn/:mod/:fn answers, in one request.
	var detailed struct {
		Name      string
		Functions []map[string]any
	}
	c.json("GET", "/v1/fn/math?details=true", g, "").data(t, &detailed)
	var one map[string]any
	c.json("GET", "/v1/fn/math/add", g, "").data(t, &one)
	if detailed.Name != "math" || len(detailed.Functions) != 1 || !reflect.DeepEqual(detailed.Functions[0], one) {
		t.Errorf("GET /v1/fn/math?details=true = %+v, want [%+v]", detailed, one)
	}
	expect(t, "details=maybe", c.json("GET", "/v1/fn/math?details=maybe", g, ""), http.StatusBadRequest, "details must be true or false")
	expect(t, "details of a missing module", c.json("GET", "/v1/fn/nope?details=true", g, ""), http.StatusNotFound, "does not exist")
	expect(t, "get missing", c.json("GET", "/v1/fn/nope", g, ""), http.StatusNotFound, `module "nope" does not exist`)

	// Rename moves the functions.
	c.createModule(g, "other")
	expect(t, "rename onto existing", c.json("PUT", "/v1/fn/math", g, `{"module":{"name":"other"}}`), http.StatusConflict, "already exists")
	expect(t, "rename _", c.json("PUT", "/v1/fn/_", g, `{"module":{"name":"x"}}`), http.StatusBadRequest, "cannot be renamed")
	expect(t, "rename to _", c.json("PUT", "/v1/fn/math", g, `{"module":{"name":"_"}}`), http.StatusBadRequest, "cannot be renamed")
	expect(t, "rename bad name", c.json("PUT", "/v1/fn/math", g, `{"module":{"name":"a b"}}`), http.StatusBadRequest, "only letters")
	expect(t, "rename missing", c.json("PUT", "/v1/fn/nope", g, `{"module":{"name":"x"}}`), http.StatusNotFound, "does not exist")
	r = c.json("PUT", "/v1/fn/math", g, `{"module":{"name":"maths"}}`)
	expect(t, "rename", r, http.StatusOK, "")
	r.data(t, &created)
	if created.Name != "maths" {
		t.Errorf("rename answered %+v", created)
	}
	expect(t, "old name gone", c.json("GET", "/v1/fn/math/add", g, ""), http.StatusNotFound, "does not exist")
	var rec fnRecord
	c.json("GET", "/v1/fn/maths/add", g, "").data(t, &rec)
	if rec.Module != "maths" || rec.Metadata.Tag != "t" {
		t.Errorf("renamed function record %+v", rec)
	}

	// Delete cascades and releases the code.
	expect(t, "delete _", c.json("DELETE", "/v1/fn/_", g, ""), http.StatusBadRequest, "cannot be deleted")
	expect(t, "delete", c.json("DELETE", "/v1/fn/maths", g, ""), http.StatusNoContent, "")
	expect(t, "delete again", c.json("DELETE", "/v1/fn/maths", g, ""), http.StatusNotFound, "does not exist")
	expect(t, "function of deleted module", c.json("GET", "/v1/fn/maths/add", g, ""), http.StatusNotFound, "does not exist")
	if got := c.metric("edgefaas_code_blobs"); got != "0" {
		t.Errorf("code blobs after deleting the only module using it: %s", got)
	}
	c.json("GET", "/v1/fn", g, "").data(t, &mods)
	names := []string{}
	for _, m := range mods {
		names = append(names, m.Name)
	}
	if strings.Join(names, ",") != "_,"+strings.Repeat("a", 160)+",other" {
		t.Errorf("modules after delete: %v", names)
	}
}

func TestFunctions(t *testing.T) {
	c := startCore(t, t.TempDir(), nil)
	g := c.guest
	c.createModule(g, "m")

	md := `{"tag":"v1","capacity":128,"timeout_ms":5000,"allowed_hosts":["api.example.com","*.example.org:8443"]}`
	rec := c.createFunction(g, "m", "echo", echoWasm, md)
	sum := sha256.Sum256(echoWasm)
	if rec.Name != "echo" || rec.Module != "m" || rec.Owner != "guest" || rec.Hash != hex.EncodeToString(sum[:]) ||
		rec.ABI != "funless" || rec.Size != int64(len(echoWasm)) || rec.Version != 1 ||
		rec.Metadata.Tag != "v1" || rec.Metadata.Capacity != 128 || rec.Metadata.TimeoutMS != 5000 ||
		strings.Join(rec.Metadata.AllowedHosts, ",") != "api.example.com,*.example.org:8443" || rec.CreatedAt.IsZero() {
		t.Errorf("created record %+v", rec)
	}
	var got fnRecord
	c.json("GET", "/v1/fn/m/echo", g, "").data(t, &got)
	if got.Hash != rec.Hash || got.Metadata.Capacity != 128 || got.Version != 1 {
		t.Errorf("GET record %+v, want %+v", got, rec)
	}
	wasi := c.createFunction(g, "_", "hello", helloWasm, "")
	if wasi.ABI != "wasi" || wasi.Module != "_" || wasi.Metadata.AllowedHosts == nil {
		t.Errorf("wasi record %+v", wasi)
	}

	code := field{name: "code", value: string(echoWasm), file: true}
	name := field{name: "name", value: "f2"}
	up := func(path string, fields ...field) response { return c.upload("POST", path, g, fields...) }
	expect(t, "duplicate", up("/v1/fn/m", field{name: "name", value: "echo"}, code), http.StatusConflict, "already exists")
	expect(t, "missing module", up("/v1/fn/nope", name, code), http.StatusNotFound, `module "nope"`)
	expect(t, "missing name", up("/v1/fn/m", code), http.StatusBadRequest, `"name"`)
	expect(t, "missing code", up("/v1/fn/m", name), http.StatusBadRequest, `"code"`)
	expect(t, "empty code", up("/v1/fn/m", name, field{name: "code", value: "", file: true}), http.StatusBadRequest, "empty")
	expect(t, "bad name", up("/v1/fn/m", field{name: "name", value: "no/slash"}, code), http.StatusBadRequest, "only letters")
	expect(t, "long name", up("/v1/fn/m", field{name: "name", value: strings.Repeat("x", 161)}, code), http.StatusBadRequest, "limit is 160")
	expect(t, "not wasm", up("/v1/fn/m", name, field{name: "code", value: "#!/bin/sh\necho hi\n", file: true}), http.StatusBadRequest, "not a WebAssembly module")
	// 25 bytes declaring a 4 GiB data segment: refused, validated in a
	// bounded child process, the core unharmed.
	bomb := string([]byte{0, 'a', 's', 'm', 1, 0, 0, 0, 5, 3, 1, 0, 1, 11, 10, 1, 0, 0x41, 0, 0x0b, 0xf0, 0xff, 0xff, 0xff, 0x0f})
	expect(t, "declared-length bomb", up("/v1/fn/m", name, field{name: "code", value: bomb, file: true}), http.StatusBadRequest, "module does not compile")
	expect(t, "wasm version 2", up("/v1/fn/m", name, field{name: "code", value: "\x00asm\x02\x00\x00\x00", file: true}), http.StatusBadRequest, "version")
	broken := append([]byte(nil), echoWasm[:len(echoWasm)/2]...)
	expect(t, "truncated wasm", up("/v1/fn/m", name, field{name: "code", value: string(broken), file: true}), http.StatusBadRequest, "does not compile")
	expect(t, "no ABI", up("/v1/fn/m", name, field{name: "code", value: string(noABI), file: true}), http.StatusBadRequest, "__invoke")
	expect(t, "unknown field", up("/v1/fn/m", name, code, field{name: "color", value: "red"}), http.StatusBadRequest, `unknown field "color"`)
	expect(t, "repeated field", up("/v1/fn/m", name, name, code), http.StatusBadRequest, "more than once")
	expect(t, "events", up("/v1/fn/m", name, code, field{name: "events", value: `[{"type":"mqtt"}]`}), http.StatusBadRequest, "events[0].params: is required")
	expect(t, "empty events", up("/v1/fn/m", field{name: "name", value: "ev"}, code, field{name: "events", value: `[]`}, field{name: "sinks", value: ``}), http.StatusCreated, "")
	for md, want := range map[string]string{
		`{"tag":1}`:                 `"tag" must be a string`,
		`{"capacity":"big"}`:        `"capacity" must be an integer`,
		`{"capacity":1.5}`:          `"capacity" must be an integer`,
		`{"capacity":-5}`:           "capacity",
		`{"timeout_ms":-1}`:         "timeout_ms",
		`{"allowed_hosts":"a.com"}`: `"allowed_hosts" must be an array`,
		`{"allowed_hosts":["a b"]}`: "not a host name",
		`{"memory":1}`:              `unknown field "memory"`,
		`{"tag":"x"`:                "truncated",
		`[1]`:                       "expected an object",
		`{"tag":"` + strings.Repeat("t", 300) + `"}`: "tag",
	} {
		expect(t, "metadata "+md, up("/v1/fn/m", name, code, field{name: "metadata", value: md}), http.StatusBadRequest, want)
	}
	for v, status := range map[string]int{"false": http.StatusCreated, "true": http.StatusCreated, "maybe": http.StatusBadRequest} {
		r := up("/v1/fn/m", field{name: "name", value: "wfw_" + v}, code, field{name: "wait_for_workers", value: v})
		expect(t, "wait_for_workers="+v, r, status, "wait_for_workers")
	}
	expect(t, "JSON instead of multipart", c.json("POST", "/v1/fn/m", g, `{"name":"x"}`), http.StatusBadRequest, "multipart/form-data")
	expect(t, "garbage multipart", c.do("POST", "/v1/fn/m", g, "multipart/form-data; boundary=zz", strings.NewReader("--zz\r\nbroken")), http.StatusBadRequest, "malformed multipart")

	// Updates.
	code2 := variant(echoWasm, 1)
	r := c.upload("PUT", "/v1/fn/m/echo", g, field{name: "name", value: "echo"}, field{name: "code", value: string(code2), file: true})
	expect(t, "update code", r, http.StatusOK, "")
	r.data(t, &got)
	sum2 := sha256.Sum256(code2)
	if got.Version != 2 || got.Hash != hex.EncodeToString(sum2[:]) || got.Metadata.Capacity != 128 || got.Metadata.Tag != "v1" {
		t.Errorf("after code update (metadata must be kept): %+v", got)
	}
	r = c.upload("PUT", "/v1/fn/m/echo", g, field{name: "metadata", value: `{"tag":"v3","capacity":64}`})
	expect(t, "update metadata", r, http.StatusOK, "")
	r.data(t, &got)
	if got.Version != 3 || got.Hash != hex.EncodeToString(sum2[:]) || got.Metadata.Tag != "v3" || got.Metadata.Capacity != 64 || len(got.Metadata.AllowedHosts) != 0 {
		t.Errorf("after metadata update (code must be kept): %+v", got)
	}
	r = c.upload("PUT", "/v1/fn/m/echo", g, field{name: "code", value: string(helloWasm), file: true}, field{name: "wait_for_workers", value: "false"})
	expect(t, "update to another ABI", r, http.StatusOK, "")
	r.data(t, &got)
	if got.ABI != "wasi" || got.Version != 4 || got.Metadata.Tag != "v3" {
		t.Errorf("after ABI change: %+v", got)
	}
	expect(t, "update rename", c.upload("PUT", "/v1/fn/m/echo", g, field{name: "name", value: "other"}, code), http.StatusBadRequest, "cannot be renamed")
	expect(t, "update nothing", c.upload("PUT", "/v1/fn/m/echo", g, field{name: "name", value: "echo"}), http.StatusBadRequest, "nothing to update")
	expect(t, "update bad code", c.upload("PUT", "/v1/fn/m/echo", g, field{name: "code", value: "nope", file: true}), http.StatusBadRequest, "not a WebAssembly")
	expect(t, "update missing", c.upload("PUT", "/v1/fn/m/nope", g, code), http.StatusNotFound, `function "nope"`)
	c.json("GET", "/v1/fn/m/echo", g, "").data(t, &got)
	if got.Version != 4 {
		t.Errorf("refused updates changed the function: %+v", got)
	}

	// Delete.
	expect(t, "delete", c.json("DELETE", "/v1/fn/m/echo", g, ""), http.StatusNoContent, "")
	expect(t, "get deleted", c.json("GET", "/v1/fn/m/echo", g, ""), http.StatusNotFound, "does not exist")
	expect(t, "delete again", c.json("DELETE", "/v1/fn/m/echo", g, ""), http.StatusNotFound, "does not exist")
	expect(t, "delete in missing module", c.json("DELETE", "/v1/fn/nope/echo", g, ""), http.StatusNotFound, "does not exist")
}

func TestUploadLimit(t *testing.T) {
	dir := t.TempDir()
	// The limit comes from the environment here; the flag form is covered
	// in TestFlagsAndEnvironment.
	c := startCore(t, dir, []string{"EDGEFAAS_MAX_UPLOAD_BYTES=4096"})
	if len(helloWasm) <= 4096 || len(echoWasm) > 4096 {
		t.Fatalf("test functions have unexpected sizes: hello %d, echo %d", len(helloWasm), len(echoWasm))
	}
	r := c.upload("POST", "/v1/fn/_", c.guest, field{name: "name", value: "big"}, field{name: "code", value: string(helloWasm), file: true})
	expect(t, "code over the limit", r, http.StatusRequestEntityTooLarge, "4096")
	huge := strings.Repeat("x", 2<<20)
	r = c.upload("POST", "/v1/fn/_", c.guest, field{name: "name", value: "big"}, field{name: "code", value: huge, file: true})
	expect(t, "body over the limit", r, http.StatusRequestEntityTooLarge, "Too Large")
	c.createFunction(c.guest, "_", "small", echoWasm, "")
}

func TestContentAddressing(t *testing.T) {
	c := startCore(t, t.TempDir(), nil)
	c.createModule(c.admin, "a")
	c.createModule(c.admin, "b")
	r1 := c.createFunction(c.admin, "a", "f", echoWasm, "")
	r2 := c.createFunction(c.admin, "b", "f", echoWasm, "")
	if r1.Hash != r2.Hash {
		t.Fatalf("same code, different hashes %s %s", r1.Hash, r2.Hash)
	}
	check := func(what, blobs, bytes string) {
		t.Helper()
		if got := c.metric("edgefaas_code_blobs"); got != blobs {
			t.Errorf("%s: code blobs %s, want %s", what, got, blobs)
		}
		if got := c.metric("edgefaas_code_bytes"); got != bytes {
			t.Errorf("%s: code bytes %s, want %s", what, got, bytes)
		}
	}
	n := func(b []byte) string { return strconv.Itoa(len(b)) }
	check("two uploads of the same code", "1", n(echoWasm))
	v := variant(echoWasm, 7)
	c.upload("PUT", "/v1/fn/a/f", c.admin, field{name: "code", value: string(v), file: true})
	check("one moved to other code", "2", strconv.Itoa(len(echoWasm)+len(v)))
	c.upload("PUT", "/v1/fn/b/f", c.admin, field{name: "code", value: string(v), file: true})
	check("both moved to the same new code", "1", n(v))
	expect(t, "delete a/f", c.json("DELETE", "/v1/fn/a/f", c.admin, ""), http.StatusNoContent, "")
	check("one reference left", "1", n(v))
	var rec fnRecord
	c.json("GET", "/v1/fn/b/f", c.admin, "").data(t, &rec)
	if rec.Size != int64(len(v)) {
		t.Errorf("remaining function %+v", rec)
	}
	expect(t, "delete b/f", c.json("DELETE", "/v1/fn/b/f", c.admin, ""), http.StatusNoContent, "")
	check("last reference deleted", "0", "0")
	if got := c.metric("edgefaas_functions"); got != "0" {
		t.Errorf("functions = %s", got)
	}
}

func TestInvokeWithoutWorkers(t *testing.T) {
	c := startCore(t, t.TempDir(), nil)
	c.createFunction(c.guest, "_", "echo", echoWasm, "")
	for _, body := range []string{`{"args":{"name":"x"}}`, `{}`, ``, `{"args":null}`} {
		r := c.json("POST", "/v1/fn/_/echo", c.guest, body)
		if r.status != http.StatusServiceUnavailable || strings.TrimSpace(string(r.body)) != `{"errors":{"detail":"No worker available"}}` {
			t.Errorf("invoke %q: %d %s", body, r.status, r.body)
		}
	}
	expect(t, "args not an object", c.json("POST", "/v1/fn/_/echo", c.guest, `{"args":[1]}`), http.StatusBadRequest, "must be a JSON object")
	expect(t, "args string", c.json("POST", "/v1/fn/_/echo", c.guest, `{"args":"x"}`), http.StatusBadRequest, "must be a JSON object")
	expect(t, "unknown field", c.json("POST", "/v1/fn/_/echo", c.guest, `{"arg":{}}`), http.StatusBadRequest, `unknown field "arg"`)
	expect(t, "bad JSON", c.json("POST", "/v1/fn/_/echo", c.guest, `{"args":`), http.StatusBadRequest, "truncated")
	expect(t, "missing function", c.json("POST", "/v1/fn/_/nope", c.guest, `{}`), http.StatusNotFound, "does not exist")
	big := `{"args":{"s":"` + strings.Repeat("x", 7<<20) + `"}}`
	expect(t, "huge args", c.json("POST", "/v1/fn/_/echo", c.guest, big), http.StatusRequestEntityTooLarge, "limit")
}

func TestOwnership(t *testing.T) {
	c := startCore(t, t.TempDir(), nil)
	alice := c.createSubject("alice")
	c.createModule(c.guest, "gmod")
	c.createFunction(c.guest, "gmod", "f", echoWasm, "")
	c.createFunction(c.guest, "_", "gshared", echoWasm, "")
	c.createFunction(alice, "_", "ashared", echoWasm, "")

	list := func(token string) string {
		var mods []struct{ Name string }
		c.json("GET", "/v1/fn", token, "").data(t, &mods)
		var names []string
		for _, m := range mods {
			names = append(names, m.Name)
		}
		return strings.Join(names, ",")
	}
	fns := func(token, mod string) string {
		var m struct{ Functions []struct{ Name string } }
		c.json("GET", "/v1/fn/"+mod, token, "").data(t, &m)
		var names []string
		for _, f := range m.Functions {
			names = append(names, f.Name)
		}
		return strings.Join(names, ",")
	}
	if got := list(alice); got != "_" {
		t.Errorf("alice sees modules %q, want only _", got)
	}
	if got := list(c.guest); got != "_,gmod" {
		t.Errorf("guest sees modules %q", got)
	}
	if got := list(c.admin); got != "_,gmod" {
		t.Errorf("admin sees modules %q", got)
	}
	if got := fns(alice, "_"); got != "ashared" {
		t.Errorf("alice sees in _: %q", got)
	}
	if got := fns(c.guest, "_"); got != "gshared" {
		t.Errorf("guest sees in _: %q", got)
	}
	if got := fns(c.admin, "_"); got != "ashared,gshared" {
		t.Errorf("admin sees in _: %q", got)
	}
	expect(t, "alice reads guest's shared function", c.json("GET", "/v1/fn/_/gshared", alice, ""), http.StatusNotFound, "does not exist")
	expect(t, "alice deletes guest's shared function", c.json("DELETE", "/v1/fn/_/gshared", alice, ""), http.StatusNotFound, "does not exist")
	expect(t, "alice updates guest's shared function", c.upload("PUT", "/v1/fn/_/gshared", alice, field{name: "metadata", value: `{"tag":"x"}`}), http.StatusNotFound, "does not exist")
	expect(t, "alice invokes guest's shared function", c.json("POST", "/v1/fn/_/gshared", alice, `{}`), http.StatusNotFound, "does not exist")
	expect(t, "alice takes guest's shared name", c.upload("POST", "/v1/fn/_", alice, field{name: "name", value: "gshared"}, field{name: "code", value: string(echoWasm), file: true}), http.StatusNotFound, "not available")
	expect(t, "alice takes guest's module name", c.json("POST", "/v1/fn", alice, `{"module":{"name":"gmod"}}`), http.StatusNotFound, "not available")
	expect(t, "alice renames guest's module", c.json("PUT", "/v1/fn/gmod", alice, `{"module":{"name":"mine"}}`), http.StatusNotFound, "does not exist")
	expect(t, "alice deletes guest's module", c.json("DELETE", "/v1/fn/gmod", alice, ""), http.StatusNotFound, "does not exist")
	// Admins see and change everything.
	expect(t, "admin reads guest's function", c.json("GET", "/v1/fn/gmod/f", c.admin, ""), http.StatusOK, "")
	expect(t, "admin deletes alice's shared function", c.json("DELETE", "/v1/fn/_/ashared", c.admin, ""), http.StatusNoContent, "")
	expect(t, "guest still has its module", c.json("GET", "/v1/fn/gmod/f", c.guest, ""), http.StatusOK, "")
}

func TestSubjectsAndTokens(t *testing.T) {
	dir := t.TempDir()
	c := startCore(t, dir, nil)
	info, err := os.Stat(filepath.Join(dir, "tokens"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("tokens file mode %v, want 0600", info.Mode().Perm())
	}
	if n := strings.Count(c.stderr.String(), "first boot"); n != 1 {
		t.Errorf("first boot logged %d times:\n%s", n, c.stderr)
	}
	if !strings.Contains(c.stderr.String(), filepath.Join(dir, "tokens")) {
		t.Errorf("log does not say where the tokens are:\n%s", c.stderr)
	}
	for _, tok := range []string{c.admin, c.guest} {
		if len(tok) < 43 || strings.Contains(c.stderr.String(), tok) {
			t.Errorf("token %q too short or logged", tok)
		}
	}

	r := c.json("POST", "/v1/admin/subjects", c.admin, `{"subject":{"name":"carol"}}`)
	expect(t, "create subject", r, http.StatusCreated, "")
	var created struct{ Name, Token string }
	r.data(t, &created)
	if created.Name != "carol" || len(created.Token) < 43 {
		t.Errorf("created %+v", created)
	}
	expect(t, "new token works", c.json("GET", "/v1/fn", created.Token, ""), http.StatusOK, "")
	expect(t, "duplicate subject", c.json("POST", "/v1/admin/subjects", c.admin, `{"subject":{"name":"carol"}}`), http.StatusConflict, "already exists")
	expect(t, "bad subject name", c.json("POST", "/v1/admin/subjects", c.admin, `{"subject":{"name":"c d"}}`), http.StatusBadRequest, "only letters")
	expect(t, "subject body type", c.json("POST", "/v1/admin/subjects", c.admin, `{"subject":{"name":true}}`), http.StatusBadRequest, "must be a string")

	r = c.json("GET", "/v1/admin/subjects", c.admin, "")
	expect(t, "list", r, http.StatusOK, "")
	if strings.Contains(string(r.body), "token") || strings.Contains(string(r.body), created.Token) {
		t.Errorf("subject list shows tokens: %s", r.body)
	}
	var subs []struct {
		Name    string
		Admin   bool
		Revoked bool
	}
	r.data(t, &subs)
	var names []string
	for _, s := range subs {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "admin,carol,guest" || !subs[0].Admin || subs[1].Admin {
		t.Errorf("subjects %+v", subs)
	}

	// Rotate: the old token stops, the new one works.
	r = c.json("PUT", "/v1/admin/subjects/carol", c.admin, "")
	expect(t, "rotate", r, http.StatusOK, "")
	var rotated struct{ Name, Token string }
	r.data(t, &rotated)
	if rotated.Token == created.Token || len(rotated.Token) < 43 {
		t.Errorf("rotated %+v", rotated)
	}
	expect(t, "old token after rotation", c.json("GET", "/v1/fn", created.Token, ""), http.StatusUnauthorized, "Invalid token")
	expect(t, "new token after rotation", c.json("GET", "/v1/fn", rotated.Token, ""), http.StatusOK, "")
	expect(t, "rotate missing", c.json("PUT", "/v1/admin/subjects/nobody", c.admin, ""), http.StatusNotFound, "does not exist")

	// Revoke, then re-issue with rotate.
	expect(t, "revoke", c.json("DELETE", "/v1/admin/subjects/carol", c.admin, ""), http.StatusNoContent, "")
	expect(t, "revoked token", c.json("GET", "/v1/fn", rotated.Token, ""), http.StatusUnauthorized, "Invalid token")
	expect(t, "revoke missing", c.json("DELETE", "/v1/admin/subjects/nobody", c.admin, ""), http.StatusNotFound, "does not exist")
	expect(t, "revoke admin", c.json("DELETE", "/v1/admin/subjects/admin", c.admin, ""), http.StatusBadRequest, "rotate it")
	r = c.json("PUT", "/v1/admin/subjects/carol", c.admin, "")
	r.data(t, &rotated)
	expect(t, "re-issued token", c.json("GET", "/v1/fn", rotated.Token, ""), http.StatusOK, "")

	// A restart keeps everything and does not rewrite the tokens file.
	before, _ := os.ReadFile(filepath.Join(dir, "tokens"))
	c.stop()
	c2 := startCore(t, dir, nil)
	after, _ := os.ReadFile(filepath.Join(dir, "tokens"))
	if string(before) != string(after) {
		t.Error("second boot rewrote the tokens file")
	}
	if strings.Contains(c2.stderr.String(), "first boot") {
		t.Errorf("second boot logged first boot:\n%s", c2.stderr)
	}
	expect(t, "token after restart", c2.json("GET", "/v1/fn", rotated.Token, ""), http.StatusOK, "")
	expect(t, "admin after restart", c2.json("GET", "/v1/admin/subjects", c.admin, ""), http.StatusOK, "")

	// Rotating the admin's own token.
	r = c2.json("PUT", "/v1/admin/subjects/admin", c.admin, "")
	r.data(t, &rotated)
	expect(t, "old admin token", c2.json("GET", "/v1/admin/subjects", c.admin, ""), http.StatusUnauthorized, "Invalid token")
	expect(t, "new admin token", c2.json("GET", "/v1/admin/subjects", rotated.Token, ""), http.StatusOK, "")
}

func TestMetrics(t *testing.T) {
	c := startCore(t, t.TempDir(), nil)
	c.createFunction(c.guest, "_", "f", echoWasm, "")
	c.json("GET", "/v1/fn/_/nope", c.guest, "")
	r := c.do("GET", "/metrics", c.guest, "", nil)
	if r.status != http.StatusOK {
		t.Fatalf("/metrics with a subject token: %d %s", r.status, r.body)
	}
	body := string(r.body)
	for _, want := range []string{
		`edgefaas_http_requests_total{code="201",method="POST",route="/v1/fn/:mod"} 1`,
		`edgefaas_http_requests_total{code="404",method="GET",route="/v1/fn/:mod/:fn"} 1`,
		`edgefaas_http_request_duration_seconds_bucket{method="POST",route="/v1/fn/:mod",le="+Inf"} 1`,
		"edgefaas_functions 1",
		"edgefaas_modules 1",
		"edgefaas_code_blobs 1",
		"edgefaas_storage_disk_bytes ",
		"go_goroutines ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
