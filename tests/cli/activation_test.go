package cli_test

import (
	"bufio"
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestActivations: fn invoke --async prints an id; activation get, logs,
// result and list show its record; fn logs prints the lines, and --follow
// prints a new activation's as it finishes.
func TestActivations(t *testing.T) {
	u := guest(t)
	u.ok("fn", "create", "echoer", testmodules.Path(t, "test/echo"))
	id := strings.TrimSpace(u.ok("fn", "invoke", "echoer", "--async", "-a", "name=Ada"))
	if !regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{26}$`).MatchString(id) {
		t.Fatalf("fn invoke --async printed %q, not an id", id)
	}
	var rec struct {
		ID, Status string
		Logs       []string
	}
	if err := wait.Until(context.Background(), 30*time.Second, "activation "+id+" succeeds", func() bool {
		decode(t, u.ok("activation", "get", id), &rec)
		return rec.Status == "success"
	}); err != nil {
		t.Fatalf("%v: %+v", err, rec)
	}
	if out := u.ok("activation", "result", id, "-o", "json"); strings.TrimSpace(out) != `{"name":"Ada"}` {
		t.Errorf("activation result: %q", out)
	}
	if out := u.ok("activation", "logs", id); out != "echoing\n" {
		t.Errorf("activation logs: %q", out)
	}
	if out := u.ok("activation", "list", "--function", "echoer"); !regexp.MustCompile(`(?m)^` + id + `\s+_/echoer\s+success\s`).MatchString(out) {
		t.Errorf("activation list:\n%s", out)
	}
	u.fail("does not exist", "activation", "get", "01JD0Q6ZK4V3T8M4W7R2C9XH5N")
	if out := u.ok("fn", "logs", "echoer"); !strings.Contains(out, "== "+id+" success") || !strings.Contains(out, "echoing") {
		t.Errorf("fn logs:\n%s", out)
	}

	// --follow: a new activation's lines appear.
	cmd := exec.Command(bin, "fn", "logs", "echoer", "--follow")
	cmd.Env = u.env
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expect := func(want string) {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("fn logs --follow ended before %q", want)
				}
				if strings.Contains(l, want) {
					return
				}
			case <-timeout:
				t.Fatalf("fn logs --follow never printed %q", want)
			}
		}
	}
	expect("== " + id)
	second := strings.TrimSpace(u.ok("fn", "invoke", "echoer", "--async"))
	expect("== " + second + " success")
	expect("echoing")
}
