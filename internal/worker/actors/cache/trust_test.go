package cache

import (
	"io"
	"log/slog"
	"testing"

	"github.com/ergo-services/ergo/etf"

	"github.com/edgefaas/edgefaas/internal/actors/trust"
	"github.com/edgefaas/edgefaas/internal/actors/wire"
)

// TestReceiveOnlyFromCores: code pushes and evictions are taken only from
// the worker's cores; a peer's are consumed and counted.
func TestReceiveOnlyFromCores(t *testing.T) {
	r := trust.NewRefusals(slog.New(slog.NewTextHandler(io.Discard, nil)))
	a := &Actor{Cores: trust.NewCores("worker@a", []string{"core@x"}), Refusals: r}
	peer, core := etf.Pid{Node: "worker@b"}, etf.Pid{Node: "core@x"}
	if !a.Receive(peer, wire.Cache{Hash: "h"}) || !a.Receive(peer, wire.Evict{Hash: "h"}) {
		t.Fatal("a peer's push or eviction went on to the mailbox")
	}
	if a.Receive(core, wire.Cache{Hash: "h"}) || a.Receive(core, wire.Evict{Hash: "h"}) || a.Receive(etf.Pid{Node: "worker@a"}, wire.Evict{}) {
		t.Fatal("a core's (or the node's own) push or eviction was consumed")
	}
	if r.Count("cache", trust.NotACore) != 1 || r.Count("evict", trust.NotACore) != 1 {
		t.Fatal("refusals not counted")
	}
}
