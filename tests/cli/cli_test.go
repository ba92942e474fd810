package cli_test

import (
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

// fnRecord is a function's record as the API returns it.
type fnRecord = client.Function

// decode parses JSON output into v.
func decode(t *testing.T, out string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("output is not the expected JSON (%v):\n%s", err, out)
	}
}

func (u *user) getFunction(module, name string) fnRecord {
	u.t.Helper()
	var f fnRecord
	decode(u.t, u.ok("fn", "get", name, "-m", module, "-o", "json"), &f)
	return f
}

// checkInvoke invokes hello-like functions on the core's own worker: the
// greeting comes back as the function's compact JSON (stdout is a pipe).
func checkInvoke(t *testing.T, u *user, args ...string) {
	t.Helper()
	checkInvokeStdin(t, u, "", args...)
}

func checkInvokeStdin(t *testing.T, u *user, stdin string, args ...string) {
	t.Helper()
	r := u.runStdin(stdin, append([]string{"fn", "invoke"}, args...)...)
	if r.code != 0 || strings.TrimSpace(r.stdout) != `{"message":"Hello, Ada!"}` {
		t.Errorf("invoke did not print the function's raw JSON:\n%s", r)
	}
}

func TestFunctionLifecycle(t *testing.T) {
	u := guest(t)
	hello := testmodules.Path(t, "hello")
	helloC := testmodules.Path(t, "hello-c")
	u.ok("mod", "create", "lifecycle")

	r := u.run("fn", "create", "hello", hello, "-m", "lifecycle", "--memory", "32", "--timeout", "5s", "--allow-host", "example.com", "--tag", "demo")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "created function lifecycle/hello (version 1, funless ABI, ") {
		t.Fatalf("create:\n%s", r)
	}
	if r.stderr != "" {
		t.Errorf("create printed progress although stderr is not a terminal:\n%s", r)
	}

	out := u.ok("fn", "list", "-m", "lifecycle")
	if !regexp.MustCompile(`(?m)^NAME\s+ABI\s+SIZE\s+VERSION\s+UPDATED$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^hello\s+funless\s+\S+ MiB\s+1\s`).MatchString(out) {
		t.Errorf("fn list table:\n%s", out)
	}
	var list []fnRecord
	decode(t, u.ok("fn", "list", "-m", "lifecycle", "-o", "json"), &list)
	if len(list) != 1 || list[0].Name != "hello" {
		t.Errorf("fn list -o json = %+v", list)
	}

	f := u.getFunction("lifecycle", "hello")
	if f.Version != 1 || f.ABI != "funless" || f.Owner != "guest" || f.Metadata.Capacity != 32 ||
		f.Metadata.TimeoutMS != 5000 || f.Metadata.Tag != "demo" || len(f.Metadata.AllowedHosts) != 1 || f.Metadata.AllowedHosts[0] != "example.com" {
		t.Errorf("fn get after create = %+v", f)
	}
	code, err := os.ReadFile(hello)
	if err != nil {
		t.Fatal(err)
	}
	if f.Size != int64(len(code)) {
		t.Errorf("size %d, the file has %d bytes", f.Size, len(code))
	}
	out = u.ok("fn", "get", "hello", "-m", "lifecycle")
	for _, want := range []string{"abi:", "funless", "timeout:", "5s", "memory:", "32 MiB", "allowed hosts:", "example.com", f.Hash} {
		if !strings.Contains(out, want) {
			t.Errorf("fn get table lacks %q:\n%s", want, out)
		}
	}

	checkInvoke(t, u, "hello", "-m", "lifecycle", "-a", "name=Ada")
	checkInvoke(t, u, "hello", "-m", "lifecycle", "-j", `{"name":"Ada"}`)
	checkInvokeStdin(t, u, `{"name": "Ada"}`, "hello", "-m", "lifecycle", "-j", "-")

	// Update the code: settings not given are kept.
	out = u.ok("fn", "update", "hello", helloC, "-m", "lifecycle", "--memory", "64")
	if !strings.HasPrefix(out, "updated function lifecycle/hello (version 2, wasi ABI, ") {
		t.Errorf("update output: %s", out)
	}
	f = u.getFunction("lifecycle", "hello")
	if f.Version != 2 || f.ABI != "wasi" || f.Metadata.Capacity != 64 || f.Metadata.TimeoutMS != 5000 || f.Metadata.Tag != "demo" || len(f.Metadata.AllowedHosts) != 1 {
		t.Errorf("fn get after update = %+v", f)
	}
	// Update settings only; --allow-host '' empties the list.
	u.ok("fn", "update", "hello", "-m", "lifecycle", "--allow-host", "", "--timeout", "2s")
	f = u.getFunction("lifecycle", "hello")
	if f.Version != 3 || f.ABI != "wasi" || f.Metadata.TimeoutMS != 2000 || len(f.Metadata.AllowedHosts) != 0 || f.Metadata.Capacity != 64 {
		t.Errorf("fn get after the settings update = %+v", f)
	}
	u.fail("nothing to update", "fn", "update", "hello", "-m", "lifecycle")

	// FunLess's spelling.
	out = u.ok("fn", "upload", "hello2", hello, "-m", "lifecycle", "--no-wait")
	if !strings.HasPrefix(out, "created function lifecycle/hello2 ") {
		t.Errorf("upload output: %s", out)
	}
	u.fail(`function "hello" already exists in module "lifecycle"`, "fn", "create", "hello", hello, "-m", "lifecycle")

	out = u.ok("fn", "delete", "hello", "-m", "lifecycle")
	if out != "deleted function lifecycle/hello\n" {
		t.Errorf("delete output: %q", out)
	}
	u.fail(`Not Found: function "hello" does not exist in module "lifecycle"`, "fn", "get", "hello", "-m", "lifecycle")
	u.fail(`Not Found: function "hello" does not exist in module "lifecycle"`, "fn", "invoke", "hello", "-m", "lifecycle")
	u.fail(`Not Found: function "hello" does not exist in module "lifecycle"`, "fn", "delete", "hello", "-m", "lifecycle")

	u.ok("mod", "delete", "lifecycle")
}

func TestDefaultModule(t *testing.T) {
	u := guest(t)
	u.ok("fn", "create", "greeter", testmodules.Path(t, "hello-c"))
	if !strings.Contains(u.ok("fn", "list"), "greeter") {
		t.Error("fn list without -m does not list the default module's function")
	}
	if f := u.getFunction("_", "greeter"); f.Module != "_" || f.ABI != "wasi" {
		t.Errorf("fn get = %+v", f)
	}
	checkInvoke(t, u, "greeter", "-a", "name=Ada")
	u.ok("fn", "delete", "greeter")
}

func TestModules(t *testing.T) {
	u := guest(t)
	if out := u.ok("mod", "create", "tools"); out != "created module tools\n" {
		t.Errorf("mod create: %q", out)
	}
	out := u.ok("mod", "list")
	if !regexp.MustCompile(`(?m)^NAME$`).MatchString(out) || !regexp.MustCompile(`(?m)^tools$`).MatchString(out) || !regexp.MustCompile(`(?m)^_$`).MatchString(out) {
		t.Errorf("mod list:\n%s", out)
	}
	var mods []struct{ Name string }
	decode(t, u.ok("mod", "list", "-o", "json"), &mods)
	if len(mods) < 2 {
		t.Errorf("mod list -o json = %+v", mods)
	}
	u.ok("fn", "create", "f", testmodules.Path(t, "hello-c"), "-m", "tools")
	var m struct {
		Name      string
		Functions []struct{ Name string }
	}
	decode(t, u.ok("mod", "get", "tools", "-o", "json"), &m)
	if m.Name != "tools" || len(m.Functions) != 1 || m.Functions[0].Name != "f" {
		t.Errorf("mod get -o json = %+v", m)
	}
	if out := u.ok("mod", "get", "tools"); !strings.Contains(out, "functions:  1") || !strings.Contains(out, "f\n") {
		t.Errorf("mod get:\n%s", out)
	}
	u.fail(`module "tools" already exists`, "mod", "create", "tools")
	u.fail("may contain only letters, digits and _", "mod", "create", "bad-name")

	if out := u.ok("mod", "update", "tools", "utils"); out != "renamed module tools to utils\n" {
		t.Errorf("mod update: %q", out)
	}
	u.fail(`module "tools" does not exist`, "mod", "get", "tools")
	if f := u.getFunction("utils", "f"); f.Module != "utils" {
		t.Errorf("the function did not move with its module: %+v", f)
	}
	// Another subject does not see the module.
	a := admin(t)
	token := strings.TrimSpace(a.ok("admin", "subject", "create", "modpeer"))
	peer := newUser(t, "EDGEFAAS_HOST="+core.url, "EDGEFAAS_TOKEN="+token)
	if strings.Contains(peer.ok("mod", "list"), "utils") {
		t.Error("another subject sees the module")
	}
	peer.fail(`module "utils" does not exist`, "mod", "delete", "utils")

	if out := u.ok("mod", "delete", "utils"); out != "deleted module utils\n" {
		t.Errorf("mod delete: %q", out)
	}
	u.fail(`module "utils" does not exist`, "fn", "get", "f", "-m", "utils")
	u.fail("the default module _ cannot be deleted", "mod", "delete", "_")
}

func TestSubjects(t *testing.T) {
	a := admin(t)
	r := a.run("admin", "subject", "create", "alice")
	token := strings.TrimSpace(r.stdout)
	if r.code != 0 || token == "" || strings.Contains(token, "\n") || !strings.Contains(r.stderr, "shown only once") {
		t.Fatalf("subject create must print the token alone on stdout:\n%s", r)
	}
	alice := newUser(t, "EDGEFAAS_HOST="+core.url, "EDGEFAAS_TOKEN="+token)
	alice.ok("mod", "list")

	out := a.ok("admin", "subject", "list")
	for _, re := range []string{`(?m)^NAME\s+ROLE\s+STATUS$`, `(?m)^alice\s+user\s+active$`, `(?m)^admin\s+admin\s+active$`, `(?m)^guest\s+user\s+active$`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("subject list lacks %s:\n%s", re, out)
		}
	}
	a.fail(`subject "alice" already exists`, "admin", "subject", "create", "alice")

	rotated := strings.TrimSpace(a.ok("admin", "subject", "rotate", "alice"))
	if rotated == "" || rotated == token {
		t.Fatalf("rotate printed %q", rotated)
	}
	alice.fail("Invalid token", "mod", "list")
	alice2 := newUser(t, "EDGEFAAS_HOST="+core.url, "EDGEFAAS_TOKEN="+rotated)
	alice2.ok("mod", "list")

	if out := a.ok("admin", "subject", "revoke", "alice"); out != "revoked subject alice\n" {
		t.Errorf("revoke: %q", out)
	}
	alice2.fail("Invalid token", "mod", "list")
	var subs []struct {
		Name    string
		Admin   bool
		Revoked bool
	}
	decode(t, a.ok("admin", "subject", "list", "-o", "json"), &subs)
	found := false
	for _, s := range subs {
		if s.Name == "alice" {
			found = s.Revoked && !s.Admin
		}
	}
	if !found {
		t.Errorf("subject list -o json does not show alice revoked: %+v", subs)
	}
	var cr struct{ Name, Token string }
	decode(t, a.ok("admin", "subject", "rotate", "alice", "-o", "json"), &cr)
	if cr.Name != "alice" || cr.Token == "" {
		t.Errorf("rotate -o json = %+v", cr)
	}
	newUser(t, "EDGEFAAS_HOST="+core.url, "EDGEFAAS_TOKEN="+cr.Token).ok("mod", "list")

	a.fail(`subject "nobody" does not exist`, "admin", "subject", "rotate", "nobody")
	a.fail("cannot be revoked", "admin", "subject", "revoke", "admin")
	guest(t).fail("Forbidden: this endpoint needs an admin token", "admin", "subject", "list")
}

func TestConfig(t *testing.T) {
	u := newUser(t)
	u.fail("host is not set", "config", "get", "host")
	out := u.ok("config", "get")
	if !strings.Contains(out, "http://127.0.0.1:4000") || !strings.Contains(out, "(not set)") {
		t.Errorf("config get with nothing set:\n%s", out)
	}

	// A host without a scheme means http.
	u.ok("config", "set", "host", strings.TrimPrefix(core.url, "http://"))
	u.ok("config", "set", "token", core.guest)
	if got := strings.TrimSpace(u.ok("config", "get", "host")); got != core.url {
		t.Errorf("config get host = %q, want %q", got, core.url)
	}
	if got := strings.TrimSpace(u.ok("config", "get", "token")); got != core.guest {
		t.Errorf("config get token = %q", got)
	}
	path := filepath.Join(u.home, ".config", "edgefaas", "config.json")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("the config file is not where it should be: %v", err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("config file mode %v, want 0600", fi.Mode().Perm())
	}
	if di, err := os.Stat(filepath.Dir(path)); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("config directory mode: %v %v", di.Mode().Perm(), err)
	}
	out = u.ok("config", "get", "-o", "json")
	if strings.Contains(out, core.guest) {
		t.Errorf("config get shows the whole token:\n%s", out)
	}

	// The file alone is enough.
	u.ok("mod", "list")
	u.fail("Forbidden", "admin", "subject", "list")
	// A value that starts with '-' is a value, not a flag (base64url
	// tokens may start with '-').
	u.ok("config", "set", "admin_token", "-looks-like-a-flag")
	u.fail("Invalid token", "admin", "subject", "list")
	u.ok("config", "set", "admin_token", core.admin)
	u.ok("admin", "subject", "list") // admin commands take admin_token
	u.ok("mod", "list")              // the others still take token

	// Precedence: flag > environment > file.
	env := *u
	env.env = append(append([]string(nil), u.env...), "EDGEFAAS_TOKEN=wrong", "EDGEFAAS_HOST=127.0.0.1:"+closedPort(t))
	env.fail("cannot reach the edgefaas core", "mod", "list")
	env.fail("Invalid token", "mod", "list", "-H", core.url)
	env.ok("mod", "list", "-H", core.url, "--token", core.guest)

	u.fail("unknown config key", "config", "set", "colour", "blue")
	u.fail("must use http or https", "config", "set", "host", "ftp://example.com")
	u.ok("config", "unset", "token")
	u.fail("Missing token", "mod", "list")

	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	u.fail("is not valid JSON", "mod", "list")
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()
	return port
}

func TestErrors(t *testing.T) {
	nocore := newUser(t, "EDGEFAAS_HOST=http://127.0.0.1:"+closedPort(t), "EDGEFAAS_TOKEN=x")
	for _, args := range [][]string{{"fn", "list"}, {"mod", "create", "m"}, {"admin", "subject", "list"}, {"fn", "invoke", "hello"}, {"node", "list"}} {
		nocore.fail("cannot reach the edgefaas core at http://127.0.0.1:", args...)
	}

	bad := newUser(t, "EDGEFAAS_HOST="+core.url, "EDGEFAAS_TOKEN=not-a-token")
	bad.fail("Invalid token", "fn", "list")
	bad.fail("Invalid token", "fn", "create", "x", testmodules.Path(t, "hello"))
	newUser(t, "EDGEFAAS_HOST="+core.url).fail("Missing token", "fn", "list")

	u := guest(t)
	dir := t.TempDir()
	u.fail("does not exist", "fn", "create", "x", filepath.Join(dir, "missing.wasm"))
	text := filepath.Join(dir, "notes.wasm")
	os.WriteFile(text, []byte("hello, I am text\n"), 0o644)
	u.fail("is not a WebAssembly module", "fn", "create", "x", text)
	broken := filepath.Join(dir, "broken.wasm")
	os.WriteFile(broken, []byte("\x00asm\x01\x00\x00\x00\xff\xff garbage"), 0o644)
	u.fail("the code is refused", "fn", "create", "x", broken)
	u.fail("may contain only letters, digits and _", "fn", "create", "bad-name", testmodules.Path(t, "hello"))
	u.fail(`module "nomodule" does not exist`, "fn", "create", "x", testmodules.Path(t, "hello"), "-m", "nomodule")

	// Functions that fail: their own message (422) or a platform error.
	u.ok("fn", "create", "fails", testmodules.Path(t, "test/fail"))
	u.ok("fn", "create", "nonjson", testmodules.Path(t, "test/nonjson"))
	u.fail("the answer is not 42", "fn", "invoke", "fails")
	u.fail("not valid JSON", "fn", "invoke", "nonjson")
	u.ok("fn", "delete", "fails")
	u.ok("fn", "delete", "nonjson")

	u.fail("-j must be a JSON object", "fn", "invoke", "x", "-j", "[1]")
	u.fail("expected key=value", "fn", "invoke", "x", "-a", "novalue")
	u.fail(`--output must be table or json, not "yaml"`, "fn", "list", "-o", "yaml")
	u.fail("is not a node address", "node", "connect", "10.0.0.1")

	// Usage errors: non-zero, with the problem named.
	if r := u.run("fn", "get"); r.code == 0 || !strings.Contains(r.stderr, "accepts 1 arg(s), received 0") {
		t.Errorf("fn get without a name:\n%s", r)
	}
	if r := u.run("fn", "frobnicate"); r.code == 0 {
		t.Errorf("unknown command succeeded:\n%s", r)
	}
	if r := u.run("fn", "list", "--bogus"); r.code == 0 || !strings.Contains(r.stderr, "unknown flag: --bogus") {
		t.Errorf("unknown flag:\n%s", r)
	}
}

// TestNodes: `node list` succeeds and shows the single-box worker the test
// core runs (--with-worker --tag demo), as a table and as JSON; a guest
// cannot attach nodes. (It once passed whether `node list` succeeded or
// failed.)
func TestNodes(t *testing.T) {
	u := admin(t)
	table := u.ok("node", "list")
	if !strings.HasPrefix(table, "NAME") || !strings.Contains(table, "core@") {
		t.Errorf("node list table without the local worker:\n%s", table)
	}
	var nodes []struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}
	decode(t, u.ok("node", "list", "-o", "json"), &nodes)
	if len(nodes) != 1 || !strings.HasPrefix(nodes[0].Name, "core@") || !slices.Contains(nodes[0].Tags, "demo") {
		t.Errorf("node list JSON: %+v, want the single-box worker tagged demo", nodes)
	}
	guest(t).fail("", "node", "connect", "127.0.0.1:1")
}

// goEnv keeps the developer's Go caches although HOME is a temporary
// directory, and forbids network access: the SDK comes from the checkout.
func goEnv(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOCACHE", "GOMODCACHE", "GOPATH").Output()
	if err != nil {
		t.Fatalf("go env: %v", err)
	}
	v := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(v) != 3 {
		t.Fatalf("go env: %q", out)
	}
	return []string{"GOCACHE=" + v[0], "GOMODCACHE=" + v[1], "GOPATH=" + v[2], "GOPROXY=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local"}
}

func TestNewBuildCreate(t *testing.T) {
	testmodules.Root(t) // `make deps` installs clang and wasi-libc
	for _, tc := range []struct{ lang, abi string }{{"go", "funless"}, {"c", "wasi"}, {"wasi-go", "wasi"}} {
		t.Run(tc.lang, func(t *testing.T) {
			u := guest(t)
			u.env = append(u.env, goEnv(t)...)
			u.dir = t.TempDir()
			name := "new_" + strings.ReplaceAll(tc.lang, "-", "_")
			out := u.ok("fn", "new", name, "--lang", tc.lang, "--sdk", repoRoot)
			if !strings.Contains(out, "edgefaas fn build "+name) {
				t.Errorf("fn new does not say what to do next:\n%s", out)
			}
			if tc.lang == "go" {
				gomod, err := os.ReadFile(filepath.Join(u.dir, name, "go.mod"))
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(string(gomod), "require github.com/edgefaas/edgefaas/sdk/go ") ||
					!strings.Contains(string(gomod), "replace github.com/edgefaas/edgefaas/sdk/go => "+filepath.Join(repoRoot, "sdk", "go")) {
					t.Errorf("go.mod:\n%s", gomod)
				}
			}
			r := u.run("fn", "build", name)
			wasm := filepath.Join(name, name+".wasm")
			if r.code != 0 || !strings.HasPrefix(r.stdout, "built "+wasm+" ("+tc.lang+", ") {
				t.Fatalf("fn build:\n%s", r)
			}
			fi, err := os.Stat(filepath.Join(u.dir, wasm))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(r.stdout, " "+strconv.FormatInt(fi.Size(), 10)+" bytes)") {
				t.Errorf("fn build does not print the size %d:\n%s", fi.Size(), r)
			}
			u.ok("fn", "create", name, wasm)
			if f := u.getFunction("_", name); f.ABI != tc.abi || f.Size != fi.Size() {
				t.Errorf("fn get = %+v, want ABI %s and size %d", f, tc.abi, fi.Size())
			}
			checkInvoke(t, u, name, "-a", "name=Ada")
			u.ok("fn", "delete", name)

			u.fail("already exists and is not empty", "fn", "new", name, "--lang", tc.lang)
		})
	}

	u := newUser(t)
	u.dir = t.TempDir()
	u.fail(`unknown --lang "rust"`, "fn", "new", "x", "--lang", "rust")
	u.fail("nothing to build", "fn", "build", ".")
	u.fail("is not a function name", "fn", "new", "my-fn")

	// Missing toolchains are named.
	u.ok("fn", "new", "nogo", "--lang", "wasi-go")
	noPath := *u
	noPath.env = append(append([]string(nil), u.env...), "PATH="+t.TempDir())
	noPath.fail("the Go toolchain (go) is not installed", "fn", "build", "nogo")
	u.ok("fn", "new", "noclang", "--lang", "c")
	noClang := *u
	noClang.env = append(append([]string(nil), u.env...), "EDGEFAAS_CLANG=no-such-clang-for-edgefaas")
	noClang.fail("no-such-clang-for-edgefaas is not installed", "fn", "build", "noclang")
}

// clientCommands are the command trees this CLI adds.
var clientCommands = []string{"fn", "mod", "admin", "node", "config", "activation", "script"}

// TestHelp checks that every client command has help with an example.
func TestHelp(t *testing.T) {
	u := newUser(t)
	var walk func(path []string)
	walk = func(path []string) {
		r := u.run(append(path, "--help")...)
		if r.code != 0 {
			t.Errorf("--help failed:\n%s", r)
			return
		}
		if !strings.Contains(r.stdout, "Examples:\n  edgefaas ") {
			t.Errorf("edgefaas %s --help has no example:\n%s", strings.Join(path, " "), r.stdout)
		}
		_, sub, ok := strings.Cut(r.stdout, "Available Commands:\n")
		if !ok {
			return
		}
		sub, _, _ = strings.Cut(sub, "\n\n")
		for _, line := range strings.Split(sub, "\n") {
			if f := strings.Fields(line); len(f) > 0 {
				walk(append(append([]string(nil), path...), f[0]))
			}
		}
	}
	for _, c := range clientCommands {
		walk([]string{c})
	}
	root := u.ok("--help")
	for _, c := range append(clientCommands, "completion") {
		if !regexp.MustCompile(`(?m)^  ` + c + `\s`).MatchString(root) {
			t.Errorf("edgefaas --help does not list %s:\n%s", c, root)
		}
	}
	for _, flag := range []string{"-H, --host", "--token", "-o, --output"} {
		if !strings.Contains(root, flag) {
			t.Errorf("edgefaas --help lacks the global flag %s", flag)
		}
	}
}

func TestCompletion(t *testing.T) {
	u := guest(t)
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		if out := u.ok("completion", shell); len(out) < 100 {
			t.Errorf("completion %s printed %q", shell, out)
		}
	}
	u.ok("fn", "create", "completeme", testmodules.Path(t, "hello-c"))
	defer u.ok("fn", "delete", "completeme")
	if out := u.ok("__complete", "fn", "get", ""); !strings.Contains(out, "completeme\n") {
		t.Errorf("function names are not completed:\n%s", out)
	}
	if out := u.ok("__complete", "fn", "new", "x", "--lang", ""); !strings.Contains(out, "wasi-go\n") {
		t.Errorf("--lang is not completed:\n%s", out)
	}
}
