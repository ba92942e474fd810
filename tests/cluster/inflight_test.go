package cluster_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
)

// TestManyInFlightReachTheirCallers: many calls in flight at once over the
// remote path (core and two workers as processes, answers routed through
// the core's invoker processes by id): every caller gets its own answer,
// none another's, none lost.
func TestManyInFlightReachTheirCallers(t *testing.T) {
	core := testcluster.StartCore(t)
	core.StartWorker(t, "127.0.0.2")
	core.StartWorker(t, "127.0.0.3")
	cl := core.Client(core.Guest)
	upload(t, cl, "_", "echo", "test/echo", nil)
	invoke(t, cl, "_", "echo", `{"warm":true}`)

	const callers, each = 64, 20
	var wg sync.WaitGroup
	errs := make(chan error, callers*each)
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				want := fmt.Sprintf(`{"caller":%d,"call":%d}`, c, i)
				out, err := cl.Invoke(ctx(t), "_", "echo", json.RawMessage(want))
				if err != nil {
					errs <- fmt.Errorf("caller %d call %d: %w", c, i, err)
					continue
				}
				var got, exp any
				if json.Unmarshal(out, &got) != nil || json.Unmarshal([]byte(want), &exp) != nil || fmt.Sprint(got) != fmt.Sprint(exp) {
					errs <- fmt.Errorf("caller %d call %d got %s, want its own %s", c, i, out, want)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	n := 0
	for err := range errs {
		if n < 5 {
			t.Error(err)
		}
		n++
	}
	if n > 0 {
		t.Fatalf("%d of %d calls did not get their own answer", n, callers*each)
	}
}
