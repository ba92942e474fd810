package reporter

import (
	"io"
	"log/slog"
	"testing"

	"github.com/ergo-services/ergo/etf"

	"github.com/edgefaas/edgefaas/internal/actors/trust"
	"github.com/edgefaas/edgefaas/internal/actors/wire"
)

// TestReceiveOnlyFromCores: a remote Join must name its sender and come
// from a core (known, or with the core role); Refused and NodeCert only
// from the worker's cores, Refused only for the sending core. The others
// are consumed and counted; the node's own messages pass.
func TestReceiveOnlyFromCores(t *testing.T) {
	r := trust.NewRefusals(slog.New(slog.NewTextHandler(io.Discard, nil)))
	a := &Actor{Trusted: trust.NewCores("worker@a", []string{"core@x"}), Refusals: r}
	self, peer, core, other := etf.Pid{Node: "worker@a"}, etf.Pid{Node: "worker@b"}, etf.Pid{Node: "core@x"}, etf.Pid{Node: "core@z"}
	consumed := []struct {
		from etf.Pid
		msg  etf.Term
	}{
		{peer, wire.Join{Node: "worker@b"}},
		{core, wire.Join{Node: "core@q"}},
		{peer, wire.Refused{Core: "worker@b"}},
		{core, wire.Refused{Core: "core@y"}},
		{peer, wire.NodeCert{}},
		{other, wire.NodeCert{}},
	}
	for _, c := range consumed {
		if !a.Receive(c.from, c.msg) {
			t.Errorf("%T from %s went on to the mailbox", c.msg, c.from.Node)
		}
	}
	passed := []struct {
		from etf.Pid
		msg  etf.Term
	}{
		{self, wire.Join{Node: "core@d"}}, // discovery, from the node itself
		{other, wire.Join{Node: "core@z"}},
		{core, wire.Refused{Core: "core@x"}},
		{core, wire.NodeCert{}},
		{peer, Changed{}},
	}
	for _, c := range passed {
		if a.Receive(c.from, c.msg) {
			t.Errorf("%T from %s was consumed", c.msg, c.from.Node)
		}
	}
	if got := r.Count("join", trust.NotACore) + r.Count("join", trust.WrongSender) + r.Count("refused", trust.NotACore) +
		r.Count("refused", trust.WrongSender) + r.Count("node_cert", trust.NotACore); got != float64(len(consumed)) {
		t.Fatalf("%v refusals counted, want %d", got, len(consumed))
	}
}
