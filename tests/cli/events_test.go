package cli_test

import (
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testmodules"
)

// TestEvents: fn create --events sets a cron trigger that fires (its
// records appear), fn get shows it, a bad trigger is refused naming its
// field, and fn update --events '[]' removes the triggers.
func TestEvents(t *testing.T) {
	u := guest(t)
	u.fail("events[0].schedule", "fn", "create", "badcron", testmodules.Path(t, "test/echo"), "--events", `[{"type":"cron","schedule":"sometimes"}]`)
	u.ok("fn", "create", "ticker", testmodules.Path(t, "test/echo"), "--events", `[{"type":"cron","schedule":"@every 1s","args":{"from":"cron"}}]`)
	if out := u.ok("fn", "get", "ticker"); !strings.Contains(out, `"schedule":"@every 1s"`) {
		t.Fatalf("fn get:\n%s", out)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if out := u.ok("activation", "list", "-f", "ticker"); strings.Contains(out, "success") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cron trigger never ran")
		}
	}
	u.ok("fn", "update", "ticker", "--events", "[]")
	if out := u.ok("fn", "get", "ticker"); strings.Contains(out, "events") {
		t.Fatalf("fn get after removing the events:\n%s", out)
	}
}
