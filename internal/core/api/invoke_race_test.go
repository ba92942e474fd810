package api

import (
	"fmt"
	"strings"
	"testing"

	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// TestInvokeRacingUpdate is the regression test for a bug TestSoak found:
// an invocation routed with a function's old version, while an update
// replaced (and so deleted) the old code, failed with a generic 500 when
// the worker asked for that code. The API now reloads the function and
// runs the current version.
func TestInvokeRacingUpdate(t *testing.T) {
	inv := &scriptedInvoker{}
	ts := newTestServer(t, Config{Invoker: inv})
	ts.create("f", minimalFunless, "")
	calls := 0
	inv.next = func(req cluster.InvokeRequest) (cluster.InvokeResult, error) {
		calls++
		if calls == 1 {
			return cluster.InvokeResult{}, fmt.Errorf("code %s for _/f: %w", req.Function.Hash[:12], storage.ErrNotFound)
		}
		return cluster.InvokeResult{Output: []byte(`"current"`)}, nil
	}
	status, _, body := ts.do("POST", "/v1/fn/_/f", "application/json", strings.NewReader(`{"args":{}}`))
	if status != 200 || !strings.Contains(body, `"current"`) || calls != 2 {
		t.Fatalf("invocation racing an update: %d %s after %d calls", status, body, calls)
	}
}
