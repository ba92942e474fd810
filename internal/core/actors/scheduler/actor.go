package scheduler

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/edgefaas/edgefaas/internal/actors/trust"
	"github.com/edgefaas/edgefaas/internal/actors/wire"
)

// Name is the scheduler's registered name on a core node; workers send
// their reports to it.
const Name = "scheduler"

// Actor is the core's scheduler process, the only writer of the Table. It
// monitors every worker node it hears from: a worker whose node goes down
// (ergo's monitor fires within milliseconds of the connection dropping) or
// that stops reporting for StaleAfter is removed at once, and OnDown fails
// the invocations in flight there.
type Actor struct {
	gen.Server
	Table  *Table
	OnJoin func(node string) // a worker appeared: push it code
	OnDown func(node string) // a worker is gone: answer its in-flight calls
	// OnRunnerDown: a worker's runner process died (the supervisor restarts
	// it); the invocations in its mailbox are lost, so its in-flight calls
	// are answered at once rather than after their timeout.
	OnRunnerDown func(node string)
	StaleAfter   time.Duration // default 5 s
	Log          *slog.Logger
	// Admit, if set, decides whether a worker's report is taken (its
	// version, version.Compatible): a refused worker is not added to the
	// table, and is told why (wire.Refused) so that it stops reporting here.
	Admit func(r wire.Report) error
	// Refusals counts reports refused because of their sender (nil: not
	// counted).
	Refusals *trust.Refusals

	runners map[string]etf.Ref // runner monitors, by worker node
	// refused holds the version each refused worker was refused at, so a
	// worker that reports again before it hears the refusal is logged once.
	refused map[string]string
}

type sweep struct{}

// Init starts the staleness sweep.
func (a *Actor) Init(p *gen.ServerProcess, _ ...etf.Term) error {
	if a.StaleAfter <= 0 {
		a.StaleAfter = 5 * time.Second
	}
	// A restarted scheduler lost its monitors: forget the workers, they
	// are back within a report interval and monitored again.
	for _, w := range a.Table.Workers() {
		a.Table.Remove(w.Node)
	}
	a.runners = map[string]etf.Ref{}
	a.refused = map[string]string{}
	p.SendAfter(p.Self(), sweep{}, a.StaleAfter/5)
	return nil
}

// Receive checks a report against its sender before the mailbox (ergo
// patch 0003): a node reports only for itself, so a report whose Node is
// not the sending process's node (another worker's load, a phantom
// worker) is refused and counted. Every message routed to the live
// scheduler passes here, so the reports HandleInfo sees were checked.
func (a *Actor) Receive(from etf.Pid, msg etf.Term) bool {
	if m, ok := msg.(wire.Report); ok && m.Node != string(from.Node) {
		a.Refusals.Refuse("report", trust.WrongSender, string(from.Node))
		return true
	}
	return false
}

// HandleInfo handles reports, node-down monitors and the sweep.
func (a *Actor) HandleInfo(p *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	switch m := msg.(type) {
	case wire.Report:
		if a.Admit != nil && m.Node != p.NodeName() {
			if err := a.Admit(m); err != nil {
				a.refuse(p, m, err)
				break
			}
			delete(a.refused, m.Node)
		}
		if _, ok := a.runners[m.Node]; !ok && m.Node != p.NodeName() {
			// The runner is monitored because invocations queued in a
			// runner that dies are lost. (Re)armed on every report until
			// set: after a runner restart the new one is monitored within a
			// report interval.
			a.runners[m.Node] = p.MonitorProcess(gen.ProcessID{Name: wire.RunnerName, Node: m.Node})
		}
		if a.Table.Update(m) {
			if m.Node != p.NodeName() { // the single-box worker shares our node
				p.MonitorNode(m.Node)
			}
			a.Log.Info("worker joined", "worker", m.Node, "arch", m.Arch, "memory", m.TotalMemory)
			if a.OnJoin != nil {
				a.OnJoin(m.Node)
			}
		}
	case gen.MessageNodeDown:
		a.down(m.Name, "node down")
	case gen.MessageDown:
		node := m.ProcessID.Node
		if ref, ok := a.runners[node]; !ok || ref != m.Ref {
			break
		}
		delete(a.runners, node)
		if m.Reason == "noconnection" {
			break // the node monitor handles a lost link
		}
		a.Log.Warn("worker's runner went down", "worker", node, "reason", m.Reason)
		if a.OnRunnerDown != nil {
			a.OnRunnerDown(node)
		}
	case sweep:
		for _, w := range a.Table.Workers() {
			if time.Since(w.Seen) > a.StaleAfter {
				a.down(w.Node, fmt.Sprintf("no report for %s", a.StaleAfter))
			}
		}
		p.SendAfter(p.Self(), sweep{}, a.StaleAfter/5)
	default:
		a.Log.Warn("scheduler: unexpected message", "type", fmt.Sprintf("%T", msg))
	}
	return gen.ServerStatusOK
}

// refuse answers a report the core will not take: the worker is told why
// (once per version it reports) and, if it was in the table, removed.
func (a *Actor) refuse(p *gen.ServerProcess, m wire.Report, err error) {
	if v, ok := a.refused[m.Node]; ok && v == m.Version {
		return
	}
	a.refused[m.Node] = m.Version
	a.Log.Warn("worker refused", "worker", m.Node, "worker_version", m.Version, "err", err)
	to := gen.ProcessID{Name: wire.ReporterName, Node: m.Node}
	if serr := p.Send(to, wire.Refused{Core: p.NodeName(), Reason: []byte(err.Error())}); serr != nil {
		a.Log.Warn("worker refused, but not told", "worker", m.Node, "err", serr)
	}
	a.down(m.Node, "refused: "+err.Error()) // if it was in the table
}

func (a *Actor) down(node, why string) {
	delete(a.runners, node)
	if a.Table.Remove(node) {
		a.Log.Warn("worker lost", "worker", node, "reason", why)
	}
	if a.OnDown != nil {
		a.OnDown(node)
	}
}

// OverflowName is the registered name of the scheduler's overflow process.
const OverflowName = "scheduler_overflow"

// Overflow takes what overflowed the scheduler's mailbox (ergo's
// fallback). A report can be dropped (the next comes within a second), but
// a node-down or runner-down notice carries the answers of the calls in
// flight there: OnDown answers them at once; the staleness sweep removes
// the worker from the table.
type Overflow struct {
	gen.Server
	OnDown func(node string)
}

// HandleInfo handles gen.MessageFallback.
func (o *Overflow) HandleInfo(_ *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	fb, ok := msg.(gen.MessageFallback)
	if !ok || o.OnDown == nil {
		return gen.ServerStatusOK
	}
	switch m := fb.Message.(type) {
	case gen.MessageNodeDown:
		o.OnDown(m.Name)
	case gen.MessageDown:
		if m.ProcessID.Name == wire.RunnerName && m.Reason != "noconnection" {
			o.OnDown(m.ProcessID.Node)
		}
	}
	return gen.ServerStatusOK
}
