package client_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := stopCore(); err != nil {
		fmt.Fprintln(os.Stderr, "http/client teardown:", err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// realCore is an `edgefaas core --with-worker` process (a single-box
// site) built from this tree, started by the first example that needs it.
type realCore struct {
	url, guest string
	hello      []byte // examples/hello, built
	cmd        *exec.Cmd
	dir        string
	log        strings.Builder // guarded by logMu
	logMu      sync.Mutex
	done       chan error
}

var (
	coreOnce sync.Once
	theCore  *realCore
	coreErr  error
)

// startedCore starts the core once per test binary and returns it, or why
// it could not start (an example prints it, which fails the example).
func startedCore() (*realCore, error) {
	coreOnce.Do(func() { theCore, coreErr = startCore() })
	return theCore, coreErr
}

func startCore() (*realCore, error) {
	hello, err := testmodules.Locate("hello")
	if err != nil {
		return nil, err
	}
	code, err := os.ReadFile(hello)
	if err != nil {
		return nil, err
	}
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOMOD: %w", err)
	}
	dir, err := os.MkdirTemp("", "edgefaas-client-example-")
	if err != nil {
		return nil, err
	}
	c := &realCore{hello: code, dir: dir, done: make(chan error, 1)}
	bin := filepath.Join(dir, "edgefaas")
	build := exec.Command("go", "build", "-o", bin, "./cmd/edgefaas")
	build.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	if out, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("go build ./cmd/edgefaas: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "core")
	c.cmd = exec.Command(bin, "core", "--data-dir", data, "--http-addr", "127.0.0.1:0", "--node-addr", "127.0.0.1:0", "--with-worker")
	c.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "XDG_CONFIG_HOME=" + filepath.Join(dir, "config")}
	// A test binary that dies takes the core with it.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pipe, err := c.cmd.StderrPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start the core: %w", err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			c.logMu.Lock()
			c.log.WriteString(line + "\n")
			c.logMu.Unlock()
			if !sent && strings.Contains(line, `msg="core listening"`) {
				for _, f := range strings.Fields(line) {
					if a, ok := strings.CutPrefix(f, "addr="); ok {
						addr <- a
						sent = true
					}
				}
			}
		}
		close(addr)
		c.done <- c.cmd.Wait()
	}()
	a, ok := <-addr
	if !ok {
		err := <-c.done
		os.RemoveAll(dir)
		return nil, fmt.Errorf("the core exited before listening (%v); log:\n%s", err, c.logText())
	}
	c.url = "http://" + a
	raw, err := os.ReadFile(filepath.Join(data, "tokens"))
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("the core's tokens: %w", err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "Guest="); ok {
			c.guest = v
		}
	}
	if c.guest == "" {
		c.stop()
		return nil, fmt.Errorf("the core's tokens file has no Guest=:\n%s", raw)
	}
	return c, nil
}

func (c *realCore) logText() string {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	return c.log.String()
}

// stop ends the core with SIGTERM, waits for it and removes its directory.
func (c *realCore) stop() error {
	defer os.RemoveAll(c.dir)
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case err := <-c.done:
		if err != nil {
			return fmt.Errorf("the core did not exit cleanly: %v; log:\n%s", err, c.logText())
		}
		return nil
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		return fmt.Errorf("the core did not stop within 30s of SIGTERM; log:\n%s", c.logText())
	}
}

// stopCore stops the core if an example started it.
func stopCore() error {
	if theCore == nil {
		return nil
	}
	return theCore.stop()
}
