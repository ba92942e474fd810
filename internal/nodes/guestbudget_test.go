package nodes

import (
	"strings"
	"testing"

	"github.com/edgefaas/edgefaas/internal/membudget"
)

// TestNoRoomForFunctionsRefused: a budget whose split leaves functions
// nothing (a single box in 64 MiB: machinery, store and one upload
// validator take it all) must not start a worker whose engine then runs
// guests and compiles without any bound (a zero budget means "unbounded"
// to the engine) until the kernel's OOM killer ends the node; it is
// refused with the figures and the way out.
func TestNoRoomForFunctionsRefused(t *testing.T) {
	const mib = 1 << 20
	_, _, err := workerApp(WorkerConfig{Budget: membudget.Budget{Bytes: 64 * mib, Source: membudget.FromFlag}},
		membudget.SingleBox, "box@127.0.0.1", nil, nil, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "leaves no memory for functions") {
		t.Fatalf("a 64 MiB single box: %v; want a refusal naming the lack of memory for functions", err)
	}
	if got := (membudget.Budget{Bytes: 256 * mib}).Split(membudget.SingleBox).Guests; got <= 0 {
		t.Fatalf("a 256 MiB single box gives functions %d bytes", got)
	}
}
