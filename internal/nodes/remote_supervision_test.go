package nodes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ergo-services/ergo/node"

	"github.com/edgefaas/edgefaas/internal/core/actors/invoker"
	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/testing/storetest"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// remotePair starts a core and a worker as two ergo nodes talking over
// TCP (TLS, cookie): invocations take the remote path (Invoke through an
// invoker process, the worker's runner, Result back), unlike the single
// box, where they call the local runner directly. The store holds the
// sleep example with a 20 s timeout.
func remotePair(t *testing.T) (*Core, *Worker, storage.Function) {
	c, w, fn, _ := remotePairStore(t)
	return c, w, fn
}

// remotePairStore is remotePair with its store, for tests adding functions.
func remotePairStore(t *testing.T, opts ...func(*WorkerConfig)) (*Core, *Worker, storage.Function, *storage.Store) {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	store := storetest.Open(t, filepath.Join(dir, "db"), log)
	fn, err := store.CreateFunction(storage.Module{Name: storage.DefaultModule}, storage.NewFunction{Name: "sleep", Owner: "guest",
		Code: testmodules.Read(t, "sleep"), ABI: "funless", Metadata: storage.Metadata{TimeoutMS: 20000}})
	if err != nil {
		t.Fatal(err)
	}
	port, err := freePort("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c, err := StartCore(CoreConfig{
		Node:  NodeConfig{Cookie: "test-cookie", DataDir: filepath.Join(dir, "core"), ListenPort: port, Log: log},
		Store: store,
		// The worker below joins with the cookie, not a token.
		JoinMode: JoinAny,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	wcfg := WorkerConfig{
		Node: NodeConfig{Name: "worker@127.0.0.1", Cookie: "test-cookie", DataDir: filepath.Join(dir, "worker"), Log: log},
		Join: []string{fmt.Sprintf("127.0.0.1:%d", port)},
	}
	for _, o := range opts {
		o(&wcfg)
	}
	w, err := StartWorker(wcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Stop)
	wait.For(t, 20*time.Second, "the core is ready", func() bool { return c.Ready() == nil })
	return c, w, fn, store
}

// sleepCall invokes sleep for ms under a context that ends at the
// function's own timeout: an answer that is lost shows up as the context's
// deadline, never as a result.
func sleepCall(c *Core, fn storage.Function, ms int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(fn.Metadata.TimeoutMS)*time.Millisecond)
	defer cancel()
	_, err := c.Invoke(ctx, cluster.InvokeRequest{Function: fn, Args: json.RawMessage(fmt.Sprintf(`{"ms":%d}`, ms))})
	return err
}

// TestRemoteActorsRestart kills every actor of both trees in turn while
// invocations are in flight on the remote worker: every caller is answered
// before its own timeout expires, with the result or an explicit "worker
// lost" (503), and the platform keeps invoking afterwards. (Answers sent
// from a runner that had been restarted, or addressed to an invoker
// process that had been, were lost: their callers waited for the timeout.)
func TestRemoteActorsRestart(t *testing.T) {
	if raceDetector {
		t.Skip("runs guests: too slow under -race (see race_on_test.go)")
	}
	c, w, fn := remotePair(t)
	if err := sleepCall(c, fn, 1); err != nil {
		t.Fatal(err)
	}
	const inFlight = 8 // one per invoker process
	type target struct {
		n    node.Node
		name string
	}
	var targets []target
	for _, name := range []string{"runner", "runner_overflow", "cache", "reporter", "httpclient", "httpclient_overflow"} {
		targets = append(targets, target{w.node, name})
	}
	for _, name := range []string{invoker.RouterName(0), invoker.RouterName(3), "scheduler", "registry"} {
		targets = append(targets, target{c.node, name})
	}
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			p := tg.n.ProcessByName(tg.name)
			if p == nil {
				t.Fatalf("no process %q", tg.name)
			}
			old := p.Self()
			errs := make(chan error, inFlight)
			var wg sync.WaitGroup
			for range inFlight {
				wg.Add(1)
				go func() { defer wg.Done(); errs <- sleepCall(c, fn, 400) }()
			}
			// Kill once every call is on the worker.
			wait.For(t, 20*time.Second, "every call in flight runs", func() bool { return w.Engine.Stats().Running >= inFlight })
			p.Kill()
			wg.Wait()
			close(errs)
			ok, lost := 0, 0
			for err := range errs {
				switch {
				case err == nil:
					ok++
				case errors.Is(err, cluster.ErrWorkerLost):
					lost++
				default:
					t.Errorf("a call in flight while %s was killed: %v", tg.name, err)
				}
			}
			t.Logf("%s killed: %d answered with the result, %d as worker lost", tg.name, ok, lost)
			wait.For(t, 20*time.Second, tg.name+" restarted", func() bool {
				q := tg.n.ProcessByName(tg.name)
				return q != nil && q.Self() != old && q.IsAlive()
			})
			wait.For(t, 20*time.Second, "the core is ready", func() bool { return c.Ready() == nil })
			for range 3 {
				if err := sleepCall(c, fn, 1); err != nil {
					t.Fatalf("after %s restarted: %v", tg.name, err)
				}
			}
		})
	}
}
