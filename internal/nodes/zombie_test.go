package nodes

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/core"
	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/supervisors"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
	"github.com/ergo-services/ergo/gen"
)

// TestCoreExitsWhenTreeGivesUp: a crash loop beyond the restart intensity
// stops the core's node, and core.Run (the body of `edgefaas core`) returns
// ErrClusterStopped, so the process exits non-zero, instead of serving
// /healthz 200 and /readyz "ready" with nothing able to run; readiness
// says so as soon as the node is gone.
func TestCoreExitsWhenTreeGivesUp(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cores := make(chan *Core, 1)
	addrs := make(chan net.Addr, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- core.Run(ctx, core.Config{DataDir: dir, HTTPAddr: "127.0.0.1:0", Logger: log,
			Listening: func(a net.Addr) { addrs <- a },
			Cluster: func(store *storage.Store, _ storage.NodeRecords) (cluster.Cluster, error) {
				c, err := StartCore(CoreConfig{Node: NodeConfig{Cookie: "test-cookie", DataDir: dir, Log: log}, Store: store})
				cores <- c
				return c, err
			}})
	}()
	c := <-cores
	if c == nil {
		t.Fatal(<-errc)
	}
	url := "http://" + (<-addrs).String()
	if resp, err := http.Get(url + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz before: %v %v", resp, err)
	}
	// Crash the scheduler faster than the tree tolerates.
	var killed gen.Process
	for i := 0; i < 3*supervisors.Intensity && c.node.IsAlive(); i++ {
		var p gen.Process
		wait.For(t, 30*time.Second, "a new scheduler or the node stopped", func() bool {
			p = c.node.ProcessByName("scheduler")
			return !c.node.IsAlive() || p != nil && (killed == nil || p.Self() != killed.Self())
		})
		if p == nil || !c.node.IsAlive() {
			break
		}
		killed = p
		p.Kill()
	}
	select {
	case err := <-errc:
		if !errors.Is(err, core.ErrClusterStopped) {
			t.Fatalf("core.Run returned %v, want ErrClusterStopped", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("core.Run still serves although its node stopped (a zombie core)")
	}
	if c.Ready() == nil {
		t.Fatal("a stopped core says it is ready")
	}
}
