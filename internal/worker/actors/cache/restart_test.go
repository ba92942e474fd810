package cache

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/actors/wire"
	"github.com/edgefaas/edgefaas/internal/supervisors"
	"github.com/edgefaas/edgefaas/internal/testing/ergotest"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// TestAckAfterRestart: a push whose sender waits is acknowledged although
// the cache process that received it was killed (and restarted by its
// supervisor) while it compiled. (The acknowledgement was sent through the
// dead process and lost: the upload waited for its ack timeout.)
func TestAckAfterRestart(t *testing.T) {
	ctx := context.Background()
	engine, err := wasm.NewEngine(ctx, wasm.Config{Interpreter: true}) // compiles fast
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close(ctx)
	store, err := NewStore(engine, "", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	node := ergotest.Node(t)
	a := &Actor{Store: store, Node: "w", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Process: node.ProcessByName}
	ergotest.Spawn(t, node, "sup", 16, "", &supervisors.Tree{Name: "sup", Children: []supervisors.Child{{Name: Name, Behavior: a, Mailbox: 64}}})
	sink, acks := ergotest.Collect(t, node, "sink", 4)
	code := testmodules.Read(t, "hello")
	a.compiling.Lock() // the compile waits until the process has been replaced
	first := node.ProcessByName(Name)
	old := first.Self()
	sink.Send(old, wire.Cache{ID: 7, ReplyTo: sink.Self(), Hash: wasm.Hash(code), Code: code})
	// Wait until HandleInfo has taken the push and started its compile
	// (which waits on the lock), then kill the process.
	wait.For(t, 10*time.Second, "the push's compile has started", func() bool {
		buf := make([]byte, 1<<20)
		return bytes.Contains(buf[:runtime.Stack(buf, true)], []byte("cache.(*Actor).compile("))
	})
	first.Kill()
	wait.For(t, 10*time.Second, "the supervisor restarts the cache process", func() bool {
		p := node.ProcessByName(Name)
		return p != nil && p.Self() != old
	})
	a.compiling.Unlock()
	select {
	case m := <-acks:
		if ack := m.(wire.Cached); ack.ID != 7 || len(ack.Error) > 0 {
			t.Fatalf("ack %+v", ack)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the push was never acknowledged")
	}
}
