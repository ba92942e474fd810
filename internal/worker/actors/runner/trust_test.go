package runner

import (
	"io"
	"log/slog"
	"testing"

	"github.com/ergo-services/ergo/etf"

	"github.com/edgefaas/edgefaas/internal/actors/trust"
	"github.com/edgefaas/edgefaas/internal/actors/wire"
)

// TestReceiveOnlyFromCores: the runner takes Invoke and Cancel only from
// its cores, and a Cancel only for the sending core's calls; the others
// are consumed (never reach the mailbox) and counted.
func TestReceiveOnlyFromCores(t *testing.T) {
	r := trust.NewRefusals(slog.New(slog.NewTextHandler(io.Discard, nil)))
	a := &Actor{Cores: trust.NewCores("worker@a", []string{"core@x"}), Refusals: r}
	peer, core := etf.Pid{Node: "worker@b"}, etf.Pid{Node: "core@x"}
	if !a.Receive(peer, wire.Invoke{ID: 1}) || !a.Receive(peer, wire.Cancel{ID: 1, Core: "core@x"}) {
		t.Fatal("a peer's command went on to the mailbox")
	}
	if !a.Receive(core, wire.Cancel{ID: 1, Core: "core@y"}) {
		t.Fatal("a cancel of another core's call went on to the mailbox")
	}
	// From the core, before Init: left to the mailbox, not refused.
	if a.Receive(core, wire.Invoke{ID: 2}) || a.Receive(core, wire.Cancel{ID: 2, Core: "core@x"}) {
		t.Fatal("a core's command was consumed before Init")
	}
	for _, c := range []struct {
		msg, reason string
		want        float64
	}{{"invoke", trust.NotACore, 1}, {"cancel", trust.NotACore, 1}, {"cancel", trust.WrongSender, 1}} {
		if got := r.Count(c.msg, c.reason); got != c.want {
			t.Errorf("%s/%s refused %v times, want %v", c.msg, c.reason, got, c.want)
		}
	}
}
