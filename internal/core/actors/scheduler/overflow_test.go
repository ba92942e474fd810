package scheduler

import (
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ergo-services/ergo/gen"

	"github.com/edgefaas/edgefaas/internal/testing/ergotest"
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
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		k := len(seen)
		mu.Unlock()
		if k == n {
			return
		}
	}
	t.Fatalf("%d of %d lost nodes had their calls answered", len(seen), n)
}
