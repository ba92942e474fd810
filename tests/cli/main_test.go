// Package cli_test drives the built edgefaas binary's client commands
// against a real `edgefaas core` process, as a person at a shell would:
// it checks what they print and their exit codes.
package cli_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
)

// Set up once in TestMain.
var (
	bin      string // the edgefaas binary
	repoRoot string
	core     *coreProc
)

func TestMain(m *testing.M) {
	os.Exit(testcluster.RunMain(m, "tests/cli", setup))
}

// setup finds the repository, gets the binary and starts the core the
// tests share; the teardown stops it.
func setup(dir string) (teardown func() error, err error) {
	if repoRoot, err = testcluster.Root(); err != nil {
		return nil, err
	}
	if bin, err = testcluster.Build(); err != nil {
		return nil, err
	}
	if core, err = startCore(filepath.Join(dir, "core")); err != nil {
		return nil, err
	}
	return core.stop, nil
}

// coreProc is one running `edgefaas core`.
type coreProc struct {
	*testcluster.CoreProcess
	url   string
	admin string
	guest string
}

// startCore runs the core on a free loopback port and waits until it logs
// its address, then reads the first-boot tokens.
func startCore(dataDir string) (*coreProc, error) {
	// A single-box site (core and worker in one process) when the binary
	// has one; invocations are checked either way.
	p := &testcluster.Process{
		Binary: bin,
		Args:   []string{"core", "--data-dir", dataDir, "--http-addr", "127.0.0.1:0", "--node-addr", "127.0.0.1:0", "--with-worker", "--tag", "demo"}, // functions tagged demo run here
		Env:    cleanEnv(),
	}
	c, err := testcluster.LaunchCore(p, dataDir, 30*time.Second)
	if err != nil {
		return nil, err
	}
	return &coreProc{CoreProcess: c, url: c.URL, admin: c.Admin, guest: c.Guest}, nil
}

// stop sends SIGTERM and waits for a clean exit.
func (c *coreProc) stop() error {
	if err := c.Stop(30 * time.Second); err != nil {
		return fmt.Errorf("the core did not exit cleanly: %w; log:\n%s", err, c.Log)
	}
	return nil
}

// cleanEnv is the test's environment without EDGEFAAS_* variables, so that
// a developer's settings do not leak into the tests.
func cleanEnv() []string { return testcluster.Environ(true) }

// user is a person at a shell: a home directory of their own (so their
// own config file) and an environment.
type user struct {
	t    *testing.T
	home string
	env  []string
	dir  string // working directory ("" = the test's)
}

// newUser returns a user with an empty home and the given extra
// environment (e.g. EDGEFAAS_HOST=...).
func newUser(t *testing.T, extraEnv ...string) *user {
	t.Helper()
	home := t.TempDir()
	env := append(cleanEnv(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
	return &user{t: t, home: home, env: append(env, extraEnv...)}
}

// guest is a user whose environment points at the core with the guest
// token.
func guest(t *testing.T) *user {
	return newUser(t, "EDGEFAAS_HOST="+core.url, "EDGEFAAS_TOKEN="+core.guest)
}

// admin is a user with the admin token.
func admin(t *testing.T) *user {
	return newUser(t, "EDGEFAAS_HOST="+core.url, "EDGEFAAS_TOKEN="+core.admin)
}

// result is one command's outcome.
type result struct {
	args           []string
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("edgefaas %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// run runs the binary with args and returns its outcome.
func (u *user) run(args ...string) result {
	u.t.Helper()
	return u.runStdin("", args...)
}

// runStdin runs the binary with stdin as its standard input.
func (u *user) runStdin(stdin string, args ...string) result {
	u.t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = u.env
	cmd.Dir = u.dir
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		u.t.Fatalf("run edgefaas %v: %v", args, err)
	}
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic:") {
		u.t.Errorf("a Go stack trace was printed:\n%s", r)
	}
	return r
}

// ok runs the command, requires exit 0 and returns standard output.
func (u *user) ok(args ...string) string {
	u.t.Helper()
	r := u.run(args...)
	if r.code != 0 {
		u.t.Fatalf("want success:\n%s", r)
	}
	return r.stdout
}

// fail runs the command and requires a non-zero exit with the one-line
// error "edgefaas: <...want...>" on standard error and nothing on
// standard output.
func (u *user) fail(want string, args ...string) result {
	u.t.Helper()
	r := u.run(args...)
	if r.code == 0 {
		u.t.Errorf("want a failure containing %q:\n%s", want, r)
		return r
	}
	if !strings.HasPrefix(r.stderr, "edgefaas: ") || !strings.Contains(r.stderr, want) {
		u.t.Errorf("want stderr \"edgefaas: ...%s...\":\n%s", want, r)
	}
	if strings.Contains(r.stderr, `{"errors"`) {
		u.t.Errorf("the raw error body was printed:\n%s", r)
	}
	if strings.TrimSpace(r.stdout) != "" {
		u.t.Errorf("a failure printed on stdout:\n%s", r)
	}
	return r
}
