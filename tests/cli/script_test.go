package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestScripts drives `edgefaas script` and `fn invoke --script` (also
// with --async) against
// the real core (a single box: its own worker is the only one).
func TestScripts(t *testing.T) {
	u := guest(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "edge.yml")
	os.WriteFile(good, []byte("- greet:\n  - workers: \"*\"\n    strategy: best-first\n  followup: fail\n"), 0o644)
	bad := filepath.Join(dir, "bad.yml")
	os.WriteFile(bad, []byte("- greet:\n  - workers: \"*\"\n    strategy: fastest\n"), 0o644)
	never := filepath.Join(dir, "never.yml")
	os.WriteFile(never, []byte("- greet:\n  - workers: \"*\"\n    invalidate:\n      max_concurrent_invocations: 0\n  followup: fail\n"), 0o644)

	if out := u.ok("script", "create", "cliedge", good); !strings.HasPrefix(out, "created APP script cliedge (id ") {
		t.Errorf("script create: %q", out)
	}
	u.fail(`strategy (line 3): must be "best-first", "random" or "platform", got "fastest"`, "script", "create", "clibad", bad)
	u.fail(`an APP script named "cliedge" already exists`, "script", "create", "cliedge", good)
	u.ok("script", "create", "clinever", never)

	if out := u.ok("script", "list"); !strings.Contains(out, "NAME") || !strings.Contains(out, "cliedge") {
		t.Errorf("script list:\n%s", out)
	}
	if out := u.ok("script", "get", "cliedge"); !strings.Contains(out, "owner:   guest") || !strings.Contains(out, "strategy: best-first") {
		t.Errorf("script get:\n%s", out)
	}
	var sc client.Script
	decode(t, u.ok("script", "get", "cliedge", "-o", "json"), &sc)
	var compact bytes.Buffer
	json.Compact(&compact, sc.Script)
	if sc.Name != "cliedge" || !strings.Contains(compact.String(), `"followup":"fail"`) {
		t.Errorf("script get -o json = %+v", sc)
	}

	u.ok("fn", "create", "scripted", testmodules.Path(t, "hello"), "--tag", "greet")
	defer u.ok("fn", "delete", "scripted")
	checkInvoke(t, u, "scripted", "-a", "name=Ada", "--script", "cliedge")
	u.fail("the APP script placed no call of _/scripted", "fn", "invoke", "scripted", "--script", "clinever")
	u.fail(`APP script "nosuch" does not exist`, "fn", "invoke", "scripted", "--script", "nosuch")
	// --async with --script: queued, placed by the script when it runs.
	id := strings.TrimSpace(u.ok("fn", "invoke", "scripted", "--async", "--script", "cliedge", "-a", "name=Ada"))
	var rec struct{ Status, Worker string }
	if err := wait.Until(context.Background(), 30*time.Second, "activation "+id+" placed by the script succeeds", func() bool {
		decode(t, u.ok("activation", "get", id, "-o", "json"), &rec)
		return rec.Status == "success"
	}); err != nil {
		t.Fatalf("%v: %+v", err, rec)
	}

	if out := u.ok("script", "delete", "cliedge"); out != "deleted APP script cliedge\n" {
		t.Errorf("script delete: %q", out)
	}
	u.ok("script", "delete", "clinever")
	u.fail(`APP script "cliedge" does not exist`, "script", "get", "cliedge")
}
