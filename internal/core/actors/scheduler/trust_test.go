package scheduler

import (
	"io"
	"log/slog"
	"testing"

	"github.com/ergo-services/ergo/etf"

	"github.com/edgefaas/edgefaas/internal/actors/trust"
	"github.com/edgefaas/edgefaas/internal/actors/wire"
)

// TestReceiveKeysReportsBySender: a report is taken only for the node
// that sent it; one naming another worker, or a phantom, is consumed
// before the table sees it and counted.
func TestReceiveKeysReportsBySender(t *testing.T) {
	r := trust.NewRefusals(slog.New(slog.NewTextHandler(io.Discard, nil)))
	a := &Actor{Table: NewTable(), Refusals: r}
	if !a.Receive(etf.Pid{Node: "worker@b"}, wire.Report{Node: "worker@a", Running: 777}) ||
		!a.Receive(etf.Pid{Node: "worker@b"}, wire.Report{Node: "worker@66"}) {
		t.Fatal("a report for another node went on to the mailbox")
	}
	if a.Receive(etf.Pid{Node: "worker@a"}, wire.Report{Node: "worker@a"}) {
		t.Fatal("a worker's own report was consumed")
	}
	if got := r.Count("report", trust.WrongSender); got != 2 {
		t.Fatalf("%v refused, want 2", got)
	}
}
