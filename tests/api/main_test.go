// Package api_test tests the core binary end to end: it builds
// cmd/edgefaas, runs `edgefaas core` on a loopback port over a real pebble
// directory, and talks to it over HTTP, as a FunLess client would.
package api_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/openapicheck"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
)

// Built once in TestMain.
var (
	coreBin   string // the edgefaas binary
	echoWasm  []byte // funless ABI reactor
	helloWasm []byte // WASI command
	noABI     []byte // valid Wasm with no supported ABI
	// apiSpec is docs/openapi.yaml: every exchange of the suite is held
	// to it (openapicheck.Spec.Check).
	apiSpec *openapicheck.Spec
)

func TestMain(m *testing.M) {
	os.Exit(testcluster.RunMain(m, "tests/api", func(dir string) (func() error, error) { return nil, build(dir) }))
}

// build gets the binary and compiles the test functions. The functions
// stay here rather than in internal/testing/testmodules: that has no
// module without an ABI, and its echo (linked with wasi-libc's malloc) is
// over the 4096-byte upload limit TestUploadLimit needs it under.
func build(dir string) error {
	var err error
	if coreBin, err = testcluster.Build(); err != nil {
		return err
	}
	specPath, err := openapicheck.Path()
	if err != nil {
		return err
	}
	if apiSpec, err = openapicheck.Load(specPath); err != nil {
		return err
	}
	wasm := func(src string, args ...string) ([]byte, error) {
		outFile := filepath.Join(dir, strings.TrimSuffix(src, ".c")+".wasm")
		args = append([]string{"--target=wasm32-wasi", "-O2", "-o", outFile, filepath.Join("testdata", src)}, args...)
		if out, err := exec.Command("clang", args...).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("clang %s (install clang, lld and wasi-libc): %v\n%s", src, err, out)
		}
		return os.ReadFile(outFile)
	}
	reactor := []string{"-nostdlib", "-mexec-model=reactor", "-Wl,--no-entry"}
	if echoWasm, err = wasm("echo.c", reactor...); err != nil {
		return err
	}
	if helloWasm, err = wasm("hello.c"); err != nil {
		return err
	}
	if noABI, err = wasm("noabi.c", reactor...); err != nil {
		return err
	}
	return nil
}

// variant returns code with a custom section appended: still the same valid
// module, but a different sha256, so tests can make many distinct functions.
func variant(code []byte, n int) []byte {
	name := fmt.Sprintf("edgefaas-test-%d", n)
	payload := append(binary2uvarint(uint64(len(name))), name...)
	payload = append(payload, '!') // wazero refuses a custom section with no data
	out := append([]byte(nil), code...)
	out = append(out, 0) // custom section id
	out = append(out, binary2uvarint(uint64(len(payload)))...)
	return append(out, payload...)
}

func binary2uvarint(v uint64) []byte {
	return binary.AppendUvarint(nil, v) // LEB128 unsigned, as Wasm uses
}

// core is one running `edgefaas core` process.
type core struct {
	*testcluster.CoreProcess
	t       *testing.T
	dataDir string
	url     string
	stderr  *testcluster.LogBuffer // whole log, filled until exit
	admin   string                 // tokens from the tokens file
	guest   string
}

// startCore runs the core on 127.0.0.1:0 over dataDir and waits until it
// logs its address. extraEnv are added to the environment; args replace the
// default flags when given.
func startCore(t *testing.T, dataDir string, extraEnv []string, args ...string) *core {
	t.Helper()
	if args == nil {
		args = []string{"--data-dir", dataDir, "--http-addr", "127.0.0.1:0"}
	}
	p := &testcluster.Process{
		Binary: coreBin,
		Args:   append([]string{"core"}, args...),
		// Any free node port, so tests never collide with a running core.
		Env: testcluster.Environ(false, append([]string{"EDGEFAAS_NODE_ADDR=127.0.0.1:0"}, extraEnv...)...),
	}
	cp, err := testcluster.LaunchCore(p, dataDir, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := &core{CoreProcess: cp, t: t, dataDir: dataDir, url: cp.URL, stderr: cp.Log, admin: cp.Admin, guest: cp.Guest}
	t.Cleanup(c.stop)
	return c
}

// stop sends SIGTERM and checks for a clean exit. It is idempotent.
func (c *core) stop() {
	select {
	case <-c.Done():
		return
	default:
	}
	if err := c.Stop(30 * time.Second); err != nil {
		c.t.Errorf("core did not exit cleanly after SIGTERM: %v; log:\n%s", err, c.stderr)
	}
}

// kill sends SIGKILL and waits.
func (c *core) kill() { c.Kill() }

// execCore runs `edgefaas core` with only environment configuration and
// returns its output once it exits (for configurations that must fail).
func execCore(t *testing.T, env []string) (string, error) {
	t.Helper()
	cmd := exec.Command(coreBin, "core")
	cmd.Env = append(append(os.Environ(), "EDGEFAAS_NODE_ADDR=127.0.0.1:0"), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// response is one HTTP answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// detail returns the FunLess error detail, failing if the shape is wrong.
func (r response) detail(t *testing.T) string {
	t.Helper()
	var e struct {
		Errors struct {
			Detail *string `json:"detail"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Errors.Detail == nil {
		t.Fatalf("status %d: body is not {\"errors\":{\"detail\":...}}: %s", r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	return *e.Errors.Detail
}

// data decodes {"data": ...} into v.
func (r response) data(t *testing.T, v any) {
	t.Helper()
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(r.body, &env); err != nil || env.Data == nil {
		t.Fatalf("status %d: body is not {\"data\":...}: %s", r.status, r.body)
	}
	if err := json.Unmarshal(env.Data, v); err != nil {
		t.Fatalf("decode data %s: %v", env.Data, err)
	}
}

// do sends a request; token "" sends no Authorization header. The
// exchange must be one docs/openapi.yaml describes.
func (c *core) do(method, path, token, contentType string, body io.Reader) response {
	c.t.Helper()
	var reqBody []byte
	if body != nil {
		var err error
		if reqBody, err = io.ReadAll(body); err != nil {
			c.t.Fatal(err)
		}
		body = bytes.NewReader(reqBody)
	}
	req, err := http.NewRequest(method, c.url+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	if err := apiSpec.Check(req, reqBody, resp, b); err != nil {
		c.t.Errorf("%s %s: docs/openapi.yaml: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (c *core) json(method, path, token, body string) response {
	c.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	return c.do(method, path, token, "application/json", r)
}

// field is one multipart field; file fields are sent as file parts.
type field struct {
	name, value string
	file        bool
}

func form(fields ...field) (string, *bytes.Buffer) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, f := range fields {
		var w io.Writer
		var err error
		if f.file {
			w, err = mw.CreateFormFile(f.name, f.name+".wasm")
		} else {
			w, err = mw.CreateFormField(f.name)
		}
		if err != nil {
			panic(err)
		}
		io.WriteString(w, f.value)
	}
	mw.Close()
	return mw.FormDataContentType(), &buf
}

func (c *core) upload(method, path, token string, fields ...field) response {
	c.t.Helper()
	ct, body := form(fields...)
	return c.do(method, path, token, ct, body)
}

// createFunction uploads code as mod/name and requires 201.
func (c *core) createFunction(token, mod, name string, code []byte, metadata string) fnRecord {
	c.t.Helper()
	fields := []field{{name: "name", value: name}, {name: "code", value: string(code), file: true}}
	if metadata != "" {
		fields = append(fields, field{name: "metadata", value: metadata})
	}
	r := c.upload("POST", "/v1/fn/"+mod, token, fields...)
	if r.status != http.StatusCreated {
		c.t.Fatalf("create %s/%s: status %d: %s", mod, name, r.status, r.body)
	}
	var rec fnRecord
	r.data(c.t, &rec)
	return rec
}

// createModule creates a module and requires 201.
func (c *core) createModule(token, name string) {
	c.t.Helper()
	r := c.json("POST", "/v1/fn", token, `{"module":{"name":"`+name+`"}}`)
	if r.status != http.StatusCreated {
		c.t.Fatalf("create module %s: status %d: %s", name, r.status, r.body)
	}
}

// createSubject creates a subject with the admin token and returns its token.
func (c *core) createSubject(name string) string {
	c.t.Helper()
	r := c.json("POST", "/v1/admin/subjects", c.admin, `{"subject":{"name":"`+name+`"}}`)
	if r.status != http.StatusCreated {
		c.t.Fatalf("create subject %s: status %d: %s", name, r.status, r.body)
	}
	var v struct{ Name, Token string }
	r.data(c.t, &v)
	return v.Token
}

// fnRecord is a function's record as the API returns it.
type fnRecord = client.Function

// expect fails unless r has the status; for errors it also checks the
// FunLess error shape and that the detail contains want (if not empty).
func expect(t *testing.T, what string, r response, status int, want string) {
	t.Helper()
	if r.status != status {
		t.Errorf("%s: status %d, want %d; body %s", what, r.status, status, r.body)
		return
	}
	if status >= 400 {
		if d := r.detail(t); !strings.Contains(d, want) {
			t.Errorf("%s: detail %q does not contain %q", what, d, want)
		}
	}
}

// metric returns the value of a sample line "name value" from /metrics.
func (c *core) metric(name string) string {
	c.t.Helper()
	r := c.do("GET", "/metrics", c.admin, "", nil)
	if r.status != http.StatusOK {
		c.t.Fatalf("/metrics: %d %s", r.status, r.body)
	}
	for _, line := range strings.Split(string(r.body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	c.t.Fatalf("/metrics has no sample %s", name)
	return ""
}
