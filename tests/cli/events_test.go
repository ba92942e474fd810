package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestEvents: fn create --events sets a cron trigger that fires (its
// records appear) once the admin lifts the subject's minimum cron period
// (`admin subject quota set`), fn get shows it, a bad trigger is refused naming its
// field, and fn update --events '[]' removes the triggers.
func TestEvents(t *testing.T) {
	u := guest(t)
	u.fail("min_cron_period_seconds 10", "fn", "create", "ticker", testmodules.Path(t, "test/echo"), "--events", `[{"type":"cron","schedule":"@every 1s"}]`)
	// The trigger ticks every second: the admin lifts the minimum period
	// (and restores the default after, for the package's other tests).
	adm := admin(t)
	if out := adm.ok("admin", "subject", "quota", "set", "guest", "--min-cron-period", "0s"); !strings.Contains(out, "min cron period     0s") {
		t.Fatalf("quota set:\n%s", out)
	}
	t.Cleanup(func() { adm.ok("admin", "subject", "quota", "clear", "guest") })
	u.fail("events[0].schedule", "fn", "create", "badcron", testmodules.Path(t, "test/echo"), "--events", `[{"type":"cron","schedule":"sometimes"}]`)
	u.ok("fn", "create", "ticker", testmodules.Path(t, "test/echo"), "--events", `[{"type":"cron","schedule":"@every 1s","args":{"from":"cron"}}]`)
	if out := u.ok("fn", "get", "ticker"); !strings.Contains(out, `"schedule":"@every 1s"`) {
		t.Fatalf("fn get:\n%s", out)
	}
	wait.For(t, 30*time.Second, "the cron trigger runs", func() bool {
		return strings.Contains(u.ok("activation", "list", "--function", "ticker"), "success")
	})
	u.ok("fn", "update", "ticker", "--events", "[]")
	if out := u.ok("fn", "get", "ticker"); strings.Contains(out, "events") {
		t.Fatalf("fn get after removing the events:\n%s", out)
	}
}

// TestSinks: fn create --sinks stores a function's sinks, fn get shows
// them with their secrets redacted, a bad sink is refused naming its
// field, and fn update --sinks '[]' removes them.
func TestSinks(t *testing.T) {
	u := guest(t)
	u.fail("sinks[0].params.url", "fn", "create", "badsink", testmodules.Path(t, "test/echo"), "--sinks", `[{"type":"webhook","params":{"url":"ftp://hooks.example/in"}}]`)
	u.ok("fn", "create", "tohook", testmodules.Path(t, "test/echo"), "--sinks", `[{"type":"webhook","params":{"url":"https://hooks.example/in","secret":"s3cret"}}]`)
	out := u.ok("fn", "get", "tohook")
	if !strings.Contains(out, "https://hooks.example/in") || strings.Contains(out, "s3cret") || !strings.Contains(out, "REDACTED") {
		t.Fatalf("fn get (want the sink, its secret redacted):\n%s", out)
	}
	u.ok("fn", "update", "tohook", "--sinks", "[]")
	if out := u.ok("fn", "get", "tohook"); strings.Contains(out, "sinks") {
		t.Fatalf("fn get after removing the sinks:\n%s", out)
	}
}
