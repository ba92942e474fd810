package cache

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/actors/wire"
	"github.com/edgefaas/edgefaas/internal/testing/ergotest"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// TestOverflowAnswersPushes floods a real cache process (mailbox of 1,
// falling back to its overflow answerer) with pushes whose sender waits:
// every one is acknowledged, those the mailbox could not take with an
// error saying the worker is busy, none dropped.
func TestOverflowAnswersPushes(t *testing.T) {
	const n = 1000
	ctx := context.Background()
	engine, err := wasm.NewEngine(ctx, wasm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close(ctx)
	store, err := NewStore(engine, "", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	node := ergotest.Node(t)
	ergotest.Spawn(t, node, OverflowName, 65535, "", &Overflow{Store: store, Node: "w", Log: log})
	c := ergotest.Spawn(t, node, Name, 1, OverflowName, &Actor{Store: store, Node: "w", Log: log, Process: node.ProcessByName})
	sink, acks := ergotest.Collect(t, node, "sink", n)
	// Code that does not match its hash: refused at once, without compiling.
	for i := range n {
		sink.Send(c.Self(), wire.Cache{ID: i + 1, ReplyTo: sink.Self(), Hash: "h", Code: []byte("x")})
	}
	seen, busy := map[int]bool{}, 0
	deadline := time.After(20 * time.Second)
	for len(seen) < n {
		select {
		case m := <-acks:
			a := m.(wire.Cached)
			seen[a.ID] = true
			if len(a.Error) > 0 && string(a.Error[:8]) == "worker w" {
				busy++
			}
		case <-deadline:
			t.Fatalf("%d of %d pushes acknowledged", len(seen), n)
		}
	}
	if busy == 0 {
		t.Fatal("the mailbox never overflowed: the test proves nothing")
	}
	t.Logf("%d pushes answered busy by the overflow process", busy)
}
