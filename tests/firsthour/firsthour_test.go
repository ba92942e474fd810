// Package firsthour_test is a newcomer's first hour: a user who is not
// root, with only Go, make and git (and the few tools they exec) on PATH,
// clones the repository, runs `make run` and talks to the platform it
// started with the CLI it built.
package firsthour_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
)

// cliCommands run as the user, with the CLI `make run` built, against the
// platform it started; each with a string its output must contain.
// `version --require-core` fails unless the client reached the core
// through the context `make run` saved; `doctor` fails unless the core
// answered and its worker joined.
var cliCommands = []struct {
	args []string
	want string
}{
	{[]string{"version", "--require-core"}, "core:   "},
	{[]string{"doctor"}, "answers, version "},
	{[]string{"fn", "list"}, "hello"},
	{[]string{"fn", "invoke", "hello", "-a", "name=firsthour"}, "Hello, firsthour!"},
}

// tools are the only commands on the user's PATH: Go, make and git, and
// what `make run` and the scripts it runs exec (the shell, coreutils, sed,
// grep). No C compiler (so no C example, and Go builds without cgo), no
// curl, mosquitto or node.
var tools = []string{
	"go", "gofmt", "make", "git",
	"sh", "bash", "sed", "grep", "cut", "cat", "mktemp", "cp", "chmod", "mv", "rm", "mkdir",
	"dirname", "sha256sum", "seq", "sleep",
}

// runLimit bounds `make run` until the hello answer: a build of the
// binary and the Go examples on a warm build cache, and the first call.
const runLimit = 4 * time.Minute

func TestMakeRunAsUserWithGoMakeGit(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the first-hour test creates a Linux user (useradd)")
	}
	if os.Geteuid() != 0 {
		t.Skip("the first-hour test must run as root: it creates a user (useradd) to run `make run` as")
	}
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("useradd is not installed: ", err)
	}
	root, err := testcluster.Root()
	if err != nil {
		t.Fatal(err)
	}

	dir, err := os.MkdirTemp("", "edgefaas-firsthour-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	must(t, os.Chmod(dir, 0o755))
	uid, gid := newUser(t, filepath.Join(dir, "home"))

	bin := filepath.Join(dir, "bin")
	must(t, os.Mkdir(bin, 0o755))
	for _, name := range tools {
		p, err := exec.LookPath(name)
		if err != nil {
			t.Fatalf("%s, which make run needs, is not on the test's PATH: %v", name, err)
		}
		must(t, os.Symlink(p, filepath.Join(bin, name)))
	}

	// The module proxy is a copy of root's download cache (checked against
	// go.sum when root downloaded it): no module comes from the network.
	goenv := func(name string) string {
		out, err := exec.Command("go", "env", name).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", name, err)
		}
		return strings.TrimSpace(string(out))
	}
	proxy := filepath.Join(dir, "proxy")
	run(t, root, nil, "cp", "-R", filepath.Join(goenv("GOMODCACHE"), "cache", "download"), proxy)

	// The build cache: a cold build of the binary takes minutes on two
	// cores, so root builds what the user will (without cgo: the user has no
	// C compiler; -trimpath, so the checkout's path does not matter) and the
	// user gets a tree of hard links to root's cache: files it may read,
	// directories it owns, so what it adds does not touch root's.
	run(t, root, []string{"CGO_ENABLED=0"}, "go", "build", "-trimpath", "-o", filepath.Join(dir, "warm"), "./cmd/edgefaas")
	gocache := filepath.Join(dir, "gocache")
	must(t, linkTree(goenv("GOCACHE"), gocache, uid, gid))

	src := filepath.Join(dir, "src")
	run(t, root, nil, "git", "clone", "-q", "--no-hardlinks", root, src)
	run(t, root, nil, "chown", "-R", fmt.Sprintf("%d:%d", uid, gid), src, filepath.Join(dir, "home"))

	port, err := testcluster.FreePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		"PATH=" + bin,
		"HOME=" + filepath.Join(dir, "home"),
		"GOCACHE=" + gocache,
		"GOPROXY=file://" + proxy + ",off",
		"GOSUMDB=off",
		"GOTOOLCHAIN=local",
		"EDGEFAAS_HTTP_ADDR=127.0.0.1:" + port,
	}
	as := func(name string, args ...string) *exec.Cmd {
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Env = src, env
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, Setpgid: true}
		return cmd
	}

	// `make run` keeps the platform running in the foreground until
	// Ctrl-C: it runs in the background until the hello answer, then the
	// CLI, then an interrupt to its process group stops it.
	mk := as(filepath.Join(bin, "make"), "run")
	out := &syncBuffer{}
	mk.Stdout, mk.Stderr = out, out
	must(t, mk.Start())
	done := make(chan error, 1)
	go func() { done <- mk.Wait() }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		syscall.Kill(-mk.Process.Pid, syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			syscall.Kill(-mk.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	t.Cleanup(stop)

	ctx, cancel := context.WithTimeout(context.Background(), runLimit)
	defer cancel()
	for !strings.Contains(out.String(), "Hello, edge!") {
		select {
		case err := <-done:
			stopped = true
			t.Fatalf("make run exited (%v) before hello answered:\n%s", err, out)
		case <-ctx.Done():
			t.Fatalf("hello did not answer within %s of make run:\n%s", runLimit, out)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if !strings.Contains(out.String(), "skipping examples/hello-c") {
		t.Errorf("make run did not say it skipped the C example (no clang on PATH):\n%s", out)
	}
	if !strings.Contains(out.String(), "building edgefaas without JavaScript functions") {
		t.Errorf("make run did not say it built without the JavaScript engine (no clang on PATH):\n%s", out)
	}

	for _, c := range cliCommands {
		cmd := as(filepath.Join(src, "build", "edgefaas"), c.args...)
		b, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(b), c.want) {
			t.Errorf("edgefaas %s as the user: %v, want %q in:\n%s", strings.Join(c.args, " "), err, c.want, b)
		}
	}
	stop()
	t.Logf("make run:\n%s", out)
}

// newUser creates a user with home as its home directory and removes it
// when the test ends.
func newUser(t *testing.T, home string) (uid, gid int) {
	t.Helper()
	name := fmt.Sprintf("efh%d", os.Getpid())
	run(t, "/", nil, "useradd", "-M", "-d", home, "-s", "/bin/sh", "-U", name)
	t.Cleanup(func() { exec.Command("userdel", name).Run() })
	must(t, os.MkdirAll(home, 0o755))
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

// linkTree makes dst a tree of directories owned by uid:gid holding hard
// links to src's files.
func linkTree(src, dst string, uid, gid int) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // go trims the cache as we walk it
			}
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			if err := os.Mkdir(to, 0o755); err != nil {
				return err
			}
			return os.Chown(to, uid, gid)
		case d.Type().IsRegular() && d.Name() != "trim.txt":
			if err := os.Link(p, to); err != nil && !os.IsNotExist(err) {
				return fmt.Errorf("link the build cache: %w", err)
			}
		}
		return nil
	})
}

// run runs a command as root in dir, failing the test with its output.
func run(t *testing.T, dir string, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// syncBuffer is a bytes.Buffer written by a process's output and read by
// the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
