package nodes

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/actors/invoker"
	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/testing/storetest"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// singleBox starts a core with its own worker on one node, over a real
// pebble store holding the hello example.
func singleBox(t *testing.T) (*Core, storage.Function) {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store := storetest.Open(t, filepath.Join(dir, "db"), log)
	fn, err := store.CreateFunction(storage.Module{Name: storage.DefaultModule}, storage.NewFunction{Name: "hello", Owner: "guest",
		Code: testmodules.Read(t, "hello"), ABI: "funless"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := StartCore(CoreConfig{
		Node:       NodeConfig{Cookie: "test-cookie", DataDir: dir, Log: log},
		Store:      store,
		WithWorker: &WorkerConfig{},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	wait.For(t, 20*time.Second, "the core is ready", func() bool { return c.Ready() == nil })
	return c, fn
}

func hello(t *testing.T, c *Core, fn storage.Function) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.Invoke(ctx, cluster.InvokeRequest{Function: fn, Args: json.RawMessage(`{"name":"again"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Output) != `{"message":"Hello, again!"}` {
		t.Fatalf("output %s", res.Output)
	}
}

// TestActorsRestart kills every actor of both trees in turn: each comes
// back under its registered name, and the platform keeps invoking.
func TestActorsRestart(t *testing.T) {
	if raceDetector {
		t.Skip("runs guests: too slow under -race (see race_on_test.go)")
	}
	c, fn := singleBox(t)
	hello(t, c, fn)
	for _, name := range []string{"scheduler", "registry", invoker.RouterName(0), "cache", "runner", "runner_overflow", "reporter", "httpclient", "httpclient_overflow"} {
		t.Run(name, func(t *testing.T) {
			p := c.node.ProcessByName(name)
			if p == nil {
				t.Fatalf("no process %q", name)
			}
			old := p.Self()
			p.Kill()
			wait.For(t, 20*time.Second, name+" restarted", func() bool {
				q := c.node.ProcessByName(name)
				return q != nil && q.Self() != old && q.IsAlive()
			})
			// A restarted scheduler forgets its workers until they report
			// again (within a report interval).
			wait.For(t, 20*time.Second, "the core is ready", func() bool { return c.Ready() == nil })
			for range 3 { // every invoker process in turn
				hello(t, c, fn)
			}
		})
	}
}

// TestSingleBoxStarts: a single box starts and its worker joins. Under
// -race (make race) this is what checks node assembly: the worker's first
// report makes the scheduler call back into the core (OnJoin) while
// StartCore is still finishing; it once read c.node as StartCore wrote it.
func TestSingleBoxStarts(t *testing.T) {
	c, _ := singleBox(t)
	if c.Ready() != nil {
		t.Fatal("not ready")
	}
}
