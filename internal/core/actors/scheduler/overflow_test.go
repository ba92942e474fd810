package scheduler

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ergo-services/ergo/gen"

	"github.com/edgefaas/edgefaas/internal/testing/ergotest"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestOverflowAnswersNodeDown floods a real scheduler process (mailbox of
// 1, falling back to its overflow process) with node-down notices: the
// calls in flight on every lost node are answered (OnDown), including for
// the notices the mailbox could not take.
func TestOverflowAnswersNodeDown(t *testing.T) {
	const n = 2000
	var mu sync.Mutex
	seen := map[string]bool{}
	onDown := func(node string) {
		mu.Lock()
		seen[node] = true
		mu.Unlock()
	}
	node := ergotest.Node(t)
	ergotest.Spawn(t, node, OverflowName, 65535, "", &Overflow{OnDown: onDown})
	s := ergotest.Spawn(t, node, Name, 1, OverflowName, &Actor{Table: NewTable(), OnDown: onDown,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	sender, _ := ergotest.Collect(t, node, "sender", 1)
	for i := range n {
		sender.Send(s.Self(), gen.MessageNodeDown{Name: fmt.Sprintf("w%d@h", i)})
	}
	k := 0
	if err := wait.Until(context.Background(), 10*time.Second, "every lost node's calls answered", func() bool {
		mu.Lock()
		k = len(seen)
		mu.Unlock()
		return k == n
	}); err != nil {
		t.Fatalf("%v: %d of %d", err, k, n)
	}
}
