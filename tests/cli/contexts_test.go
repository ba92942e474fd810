package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
)

// configFile is where a user's client config lives.
func (u *user) configFile() string {
	return filepath.Join(u.home, ".config", "edgefaas", "config.json")
}

// currentContext is what `config current-context` prints.
func (u *user) currentContext() string {
	u.t.Helper()
	return strings.TrimSpace(u.ok("config", "current-context"))
}

// TestContexts: two saved platforms, switching between them, and --context
// and EDGEFAAS_CONTEXT choosing one for a command.
func TestContexts(t *testing.T) {
	u := newUser(t)
	closed := "127.0.0.1:" + closedPort(t)
	// The first context becomes current; the second does not.
	u.ok("config", "set-context", "site", "--host", core.url, "--token", core.guest)
	r := u.run("config", "set-context", "other", "-H", closed, "--token", "other-token")
	if r.code != 0 || !strings.Contains(r.stderr, "the current context is site") {
		t.Fatalf("set-context other:\n%s", r)
	}
	if got := u.currentContext(); got != "site" {
		t.Errorf("current context %q, want site", got)
	}
	out := u.ok("config", "get-contexts")
	if !regexp.MustCompile(`(?m)^\*\s+site\s+`+regexp.QuoteMeta(core.url)).MatchString(out) ||
		!regexp.MustCompile(`(?m)^\s+other\s+http://`+regexp.QuoteMeta(closed)).MatchString(out) ||
		strings.Contains(out, core.guest) {
		t.Errorf("get-contexts:\n%s", out)
	}
	var rows []struct {
		Name    string
		Current bool
		Host    string
	}
	decode(t, u.ok("config", "get-contexts", "-o", "json"), &rows)
	if len(rows) != 2 || rows[0].Name != "other" || rows[0].Current || rows[1].Name != "site" || !rows[1].Current {
		t.Errorf("get-contexts -o json: %+v", rows)
	}

	u.ok("mod", "list")
	u.fail("cannot reach the edgefaas core", "mod", "list", "--context", "other")
	env := *u
	env.env = append(append([]string(nil), u.env...), "EDGEFAAS_CONTEXT=other")
	env.fail("cannot reach the edgefaas core", "mod", "list")
	env.ok("mod", "list", "--context", "site") // the flag wins over the environment
	u.fail(`context "nope" does not exist`, "mod", "list", "--context", "nope")

	r = u.run("config", "use-context", "other")
	if r.code != 0 || !strings.Contains(r.stderr, "switched to context other") {
		t.Fatalf("use-context:\n%s", r)
	}
	if got := u.currentContext(); got != "other" {
		t.Errorf("current context %q, want other", got)
	}
	u.fail("cannot reach the edgefaas core", "mod", "list")
	// Flags still win over the context.
	u.fail("Invalid token", "mod", "list", "-H", core.url)
	u.ok("mod", "list", "-H", core.url, "--token", core.guest)
	// config set and get act on the current context, or on --context.
	u.ok("config", "set", "token", core.guest)
	if got := strings.TrimSpace(u.ok("config", "get", "token")); got != core.guest {
		t.Errorf("config get token = %q", got)
	}
	u.ok("config", "set", "--context", "other", "host", core.url)
	u.ok("mod", "list")
	if got := strings.TrimSpace(u.ok("config", "get", "host", "--context", "site")); got != core.url {
		t.Errorf("config get host --context site = %q", got)
	}
	u.fail(`context "nope" does not exist`, "config", "use-context", "nope")
	u.fail("context name", "config", "set-context", "a/b", "--host", core.url)

	// Deleting the current context leaves none current.
	r = u.run("config", "delete-context", "other")
	if r.code != 0 || !strings.Contains(r.stderr, "no context is current") {
		t.Fatalf("delete-context:\n%s", r)
	}
	u.fail("no current context", "config", "current-context")
	u.fail(`context "other" does not exist`, "config", "delete-context", "other")
	u.ok("mod", "list", "--context", "site")

	fi, err := os.Stat(u.configFile())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("config file: %v %v", fi, err)
	}
}

// TestContextOfSeveralCores: a context's host may list a core group's
// cores, comma-separated; a command fails over from one that does not
// answer to the next. A list naming a core twice is refused.
func TestContextOfSeveralCores(t *testing.T) {
	u := newUser(t)
	closed := "127.0.0.1:" + closedPort(t)
	u.ok("config", "set-context", "group", "--host", closed+", "+core.url, "--token", core.guest)
	if got, want := strings.TrimSpace(u.ok("config", "get", "host")), "http://"+closed+","+core.url; got != want {
		t.Errorf("config get host = %q, want %q", got, want)
	}
	u.ok("mod", "list")
	u.ok("mod", "list", "-H", core.url+","+closed)
	u.fail("cannot reach any of the edgefaas cores", "mod", "list", "-H", closed+",127.0.0.2:"+closedPort(t))
	u.fail("twice", "config", "set", "host", core.url+","+core.url)
}

// TestContextMigration: a config file from before contexts keeps working:
// its settings are the context default, current; the next change writes
// the file with contexts.
func TestContextMigration(t *testing.T) {
	u := newUser(t)
	old := `{"host": "` + core.url + `", "token": "` + core.guest + `", "admin_token": "` + core.admin + `"}`
	if err := os.MkdirAll(filepath.Dir(u.configFile()), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(u.configFile(), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	u.ok("mod", "list")
	u.ok("admin", "subject", "list") // the admin token came along
	if got := u.currentContext(); got != "default" {
		t.Errorf("current context %q, want default", got)
	}
	if raw, _ := os.ReadFile(u.configFile()); string(raw) != old {
		t.Errorf("reading rewrote the file:\n%s", raw)
	}

	u.ok("config", "set-context", "lab", "--host", "127.0.0.1:"+closedPort(t))
	raw, err := os.ReadFile(u.configFile())
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]json.RawMessage
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if _, ok := f["host"]; ok || string(f["current_context"]) != `"default"` {
		t.Errorf("file after a change:\n%s", raw)
	}
	u.ok("admin", "subject", "list")
	u.fail("cannot reach the edgefaas core", "mod", "list", "--context", "lab")
}

// TestDevKeepsSiteContext: `edgefaas dev` (what `make run` starts) writes
// the context dev and leaves the user's current site context as it was.
func TestDevKeepsSiteContext(t *testing.T) {
	u := newUser(t)
	u.ok("config", "set-context", "site", "--host", core.url, "--token", core.guest, "--admin-token", core.admin)

	dataDir := filepath.Join(t.TempDir(), "dev")
	p := &testcluster.Process{
		Binary: bin,
		Args:   []string{"dev", "--data-dir", dataDir, "--http-addr", "127.0.0.1:0"},
		Env:    u.env,
	}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(30 * time.Second); err != nil {
			t.Errorf("edgefaas dev did not exit cleanly: %v; log:\n%s", err, p.Log.Tail(40))
		}
	})
	m, err := p.WaitLog(regexp.MustCompile(`^edgefaas dev: API at (\S+),`), 0, 60*time.Second)
	if err != nil {
		t.Fatalf("edgefaas dev: %v; log:\n%s", err, p.Log.Tail(40))
	}
	devURL := m[1]
	if _, err := p.WaitLog(regexp.MustCompile(`the current context stays site: use --context dev`), 0, 10*time.Second); err != nil {
		t.Errorf("edgefaas dev does not say how to reach it: %v; log:\n%s", err, p.Log.Tail(40))
	}

	if got := u.currentContext(); got != "site" {
		t.Errorf("current context %q after edgefaas dev, want site", got)
	}
	var rows []struct{ Name, Host string }
	decode(t, u.ok("config", "get-contexts", "-o", "json"), &rows)
	if len(rows) != 2 || rows[0].Name != "dev" || rows[0].Host != devURL || rows[1].Name != "site" || rows[1].Host != core.url {
		t.Errorf("contexts after edgefaas dev: %+v", rows)
	}
	for key, want := range map[string]string{"host": core.url, "token": core.guest, "admin_token": core.admin} {
		if got := strings.TrimSpace(u.ok("config", "get", key, "--context", "site")); got != want {
			t.Errorf("site's %s = %q after edgefaas dev, want %q", key, got, want)
		}
	}
	u.ok("admin", "subject", "list") // still the site, with its admin token
	u.ok("fn", "list", "--context", "dev")
	u.fail("Forbidden", "admin", "subject", "list", "--context", "dev") // dev holds the guest token only
}
