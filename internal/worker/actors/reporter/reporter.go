// Package reporter is the worker's reporter process: it tells every core it
// knows the worker's architecture, memory (budget, resident, reserved),
// load and compiled versions,
// once a second and at once when the cache changes. A report to a core
// that restarted reconnects to it (ergo reconnects lazily on send), so the
// reporter is also how a worker finds its core again.
package reporter

import (
	"fmt"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/edgefaas/edgefaas/internal/actors/send"
	"github.com/edgefaas/edgefaas/internal/actors/trust"
	"github.com/edgefaas/edgefaas/internal/actors/wire"
	"github.com/edgefaas/edgefaas/internal/wasm"
	"github.com/edgefaas/edgefaas/internal/worker/actors/cache"
	"github.com/edgefaas/edgefaas/internal/worker/actors/runner"
)

// Name is the reporter's registered name on a worker node.
const Name = wire.ReporterName

// SchedulerName is the core process reports go to.
const SchedulerName = "scheduler"

// Changed asks for a report now (sent locally when the cache changes).
type Changed struct{}

type tick struct{}

// Actor reports the worker's state.
type Actor struct {
	gen.Server
	Cores  []string // core node names
	Engine *wasm.Engine
	Store  *cache.Store
	Usage  *runner.Usage
	Node   string
	Tags   []string
	// Budget is the node's whole memory budget; GuestMemory the guests'
	// share of it (the engine's MemoryBudget), which is what the worker
	// offers to functions.
	Budget      int64
	GuestMemory int64
	// RSS reads the process's resident set (membudget.RSS); nil: not reported.
	RSS        func() (int64, error)
	MaxRunning int
	Host       string
	Port       int
	Interval   time.Duration
	Log        *slog.Logger
	// Sender gives reports a deadline, so one hung core does not stop
	// the reports to the others (nil: ergo's blocking Send).
	Sender *send.Sender
	// OnCert adopts a certificate a core rotated (wire.NodeCert); nil:
	// the worker does not hold a core-issued certificate (logged, ignored).
	OnCert func(cert, key []byte) error
	// Version is the edgefaas version this worker runs, in every report.
	Version string
	// OnRefused is called when a core refused this worker (wire.Refused)
	// and no core is left to report to; nil: only logged.
	OnRefused func(reason string)
	// Trusted are the nodes this worker takes commands from (a core that
	// attaches it with Join is added); Refusals counts the messages of
	// others (both nil in unit tests: every node).
	Trusted  *trust.Cores
	Refusals *trust.Refusals
}

// Receive checks Join, Refused and NodeCert against their sender before
// the mailbox (ergo patch 0003). A remote Join must name its sender and
// come from a core (one of the worker's, or a node with the core role:
// `edgefaas node connect`); Refused and NodeCert only from the worker's
// cores, and Refused only for the core that sends it. The others are
// refused and counted; what passes goes to the mailbox.
func (a *Actor) Receive(from etf.Pid, msg etf.Term) bool {
	sender := string(from.Node)
	local := a.Trusted == nil || sender == a.Trusted.Local()
	var kind, reason string
	switch m := msg.(type) {
	case wire.Join:
		kind = "join"
		switch {
		case local:
		case m.Node != sender:
			reason = trust.WrongSender
		case !a.Trusted.Has(sender) && !trust.CoreRole(sender):
			reason = trust.NotACore
		}
	case wire.Refused:
		kind = "refused"
		switch {
		case !a.Trusted.Has(sender):
			reason = trust.NotACore
		case !local && m.Core != sender:
			reason = trust.WrongSender
		}
	case wire.NodeCert:
		kind = "node_cert"
		if !a.Trusted.Has(sender) {
			reason = trust.NotACore
		}
	default:
		return false
	}
	if reason == "" {
		return false
	}
	a.Refusals.Refuse(kind, reason, sender)
	return true
}

// Init schedules the first report right away.
func (a *Actor) Init(p *gen.ServerProcess, _ ...etf.Term) error {
	if a.Interval <= 0 {
		a.Interval = time.Second
	}
	p.Send(p.Self(), tick{})
	return nil
}

// HandleInfo reports on every tick and on Changed.
func (a *Actor) HandleInfo(p *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	switch m := msg.(type) {
	case tick:
		a.report(p)
		p.SendAfter(p.Self(), tick{}, a.Interval)
	case Changed:
		a.report(p)
	case wire.Join:
		if a.Trusted != nil {
			a.Trusted.Add(m.Node) // checked by Receive
		}
		if !slices.Contains(a.Cores, m.Node) {
			a.Cores = append(a.Cores, m.Node)
			a.Log.Info("attached to core", "core", m.Node, "node", a.Node)
		}
		a.report(p)
	case wire.Refused:
		i := slices.Index(a.Cores, m.Core)
		if i < 0 {
			break
		}
		a.Cores = slices.Delete(a.Cores, i, i+1)
		a.Log.Error("refused by core: no longer reporting to it", "core", m.Core, "reason", string(m.Reason))
		if len(a.Cores) == 0 && a.OnRefused != nil {
			a.OnRefused(fmt.Sprintf("refused by core %s: %s", m.Core, m.Reason))
		}
	case wire.NodeCert:
		if a.OnCert == nil {
			a.Log.Warn("a core sent a new node certificate, but this worker did not join with a token; ignored")
			break
		}
		if err := a.OnCert(m.Cert, m.Key); err != nil {
			a.Log.Error("node certificate rotation refused", "err", err)
			break
		}
		a.Log.Info("node certificate rotated: presented from the next handshake", "node", a.Node)
	}
	return gen.ServerStatusOK
}

// Report is the worker's state now. Reserved is the engine's own count
// (guests and compiled code) when it keeps one, else what running
// invocations declared. Free memory is what is left of the guests' share,
// and never more than what is left of the budget in RSS: a worker whose
// resident set is near its budget is not offered more work by memory.
func (a *Actor) Report() wire.Report {
	s := a.Engine.Stats()
	reserved := s.MemoryReserved
	if s.MemoryBudget == 0 {
		reserved = a.Usage.Reserved.Load()
	}
	var rss int64
	if a.RSS != nil {
		if v, err := a.RSS(); err == nil {
			rss = v
		}
	}
	free := a.GuestMemory - reserved
	if a.Budget > 0 && rss > 0 {
		free = min(free, a.Budget-rss)
	}
	return wire.Report{
		Node: a.Node, Arch: runtime.GOARCH, OS: runtime.GOOS, Tags: wire.JoinList(a.Tags),
		TotalMemory: size(a.GuestMemory), FreeMemory: size(max(free, 0)),
		MemoryBudget: size(a.Budget), MemoryInUse: size(rss), MemoryReserved: size(reserved),
		Running: s.Running, Queued: s.Queued, MaxRunning: a.MaxRunning,
		Cached: wire.JoinList(a.Store.Hashes()), Invocations: int(s.Invocations), Host: a.Host, Port: a.Port,
		Version: a.Version, Clock: time.Now().UnixMilli(),
	}
}

// size is a byte count as the report's int: on a 32-bit worker, counts
// beyond its int (a budget of several GiB) are its largest, never a
// wrapped negative size no placement would choose.
func size(v int64) int { return int(min(v, math.MaxInt)) }

func (a *Actor) report(p *gen.ServerProcess) {
	r := a.Report()
	for _, core := range a.Cores {
		to := gen.ProcessID{Name: SchedulerName, Node: core}
		var err error
		if a.Sender != nil {
			err = a.Sender.Send(p, to, r)
		} else {
			err = p.Send(to, r)
		}
		if err != nil {
			a.Log.Debug("report not delivered", "core", core, "node", a.Node, "err", err)
		}
	}
}
