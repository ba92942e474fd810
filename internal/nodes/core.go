package nodes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/node"

	"github.com/edgefaas/edgefaas/internal/actors/discovery"
	"github.com/edgefaas/edgefaas/internal/actors/send"
	"github.com/edgefaas/edgefaas/internal/actors/trust"
	"github.com/edgefaas/edgefaas/internal/actors/wire"
	"github.com/edgefaas/edgefaas/internal/core/actors/invoker"
	"github.com/edgefaas/edgefaas/internal/core/actors/registry"
	"github.com/edgefaas/edgefaas/internal/core/actors/scheduler"
	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/egress"
	"github.com/edgefaas/edgefaas/internal/membudget"
	"github.com/edgefaas/edgefaas/internal/supervisors"
	"github.com/edgefaas/edgefaas/internal/version"
	"github.com/edgefaas/edgefaas/internal/worker/actors/reporter"
)

// CoreConfig configures a core node.
type CoreConfig struct {
	Node  NodeConfig
	Store *storage.Store
	// Invokers is the number of invoker processes (default 8).
	Invokers int
	// DefaultTimeout for functions that declare none (default 60 s).
	DefaultTimeout time.Duration
	// Discovery announces this core on a LAN interface (Discovery.Interface).
	Discovery Discovery
	// WithWorker runs a worker application on the core's own node: the
	// single-box edge site (and `edgefaas dev`). Remote workers can still join.
	WithWorker *WorkerConfig
	// JoinMode: which node certificates the core accepts (default
	// JoinAuto: its own CA's only, or the operator CA's). Without an
	// operator CA the core keeps its CA in Node.DataDir/node-ca and issues
	// certificates to workers that join with a one-time token
	// (authority.go).
	JoinMode JoinMode
	// Group, if set, makes the node CA, its join tokens and its records
	// the core group's (groupca.go); nil: the core's own.
	Group *GroupTrust
}

// Core is a running core node. It implements cluster.Cluster.
type Core struct {
	node     node.Node
	table    *scheduler.Table
	pending  *invoker.Pending
	invoker  *invoker.Invoker
	notifier *registry.Notifier
	worker   *Worker
	metrics  *invoker.Metrics
	cfg      CoreConfig
	done     chan struct{} // closed when the node stops
	registry *registry.Actor
	sender   *send.Sender
	ca       *authority // nil: an operator CA, or no store
	// refusals counts cluster messages refused because of their sender,
	// on this node (the single box's worker counts into it too).
	refusals *trust.Refusals
}

var _ cluster.Cluster = (*Core)(nil)

// StartCore starts the core node (and, with WithWorker, its local worker).
func StartCore(cfg CoreConfig) (*Core, error) {
	log := cfg.Node.Log
	if log == nil {
		log = slog.Default()
	}
	if cfg.Invokers <= 0 {
		cfg.Invokers = 8
	}
	if cfg.DefaultTimeout <= 0 {
		cfg.DefaultTimeout = time.Minute
	}
	if cfg.Node.ListenHost == "" {
		cfg.Node.ListenHost = "127.0.0.1"
	}
	if cfg.Node.Name == "" {
		cfg.Node.Name = "core@" + cfg.Node.ListenHost
	}
	switch cfg.JoinMode {
	case "", JoinAuto, JoinToken, JoinAny:
	default:
		return nil, fmt.Errorf("node join mode %q: want %q, %q or %q", cfg.JoinMode, JoinAuto, JoinToken, JoinAny)
	}
	c := &Core{table: scheduler.NewTable(), pending: invoker.NewPending(), metrics: invoker.NewMetrics(), cfg: cfg,
		refusals: trust.NewRefusals(log)}
	// Actor callbacks (OnJoin, the notifier, the local worker) look
	// processes up through live, which is set once the node runs: c.node is
	// written after start returns, while those callbacks may already run.
	var live atomic.Pointer[node.Node]
	proc := func(name string) gen.Process {
		n := live.Load()
		if n == nil {
			return nil
		}
		return (*n).ProcessByName(name)
	}
	log = log.With("node", cfg.Node.Name)
	self := version.Get().Version
	sched := &scheduler.Actor{
		Table: c.table,
		Log:   log,
		// A worker of a version this core does not support is refused
		// (docs/RATIONALE.md, "Why refuse a worker of another version?").
		Admit:    func(r wire.Report) error { return version.Compatible(self, r.Version) },
		Refusals: c.refusals,
		OnJoin: func(n string) {
			if p := proc(registry.Name); p != nil {
				p.Send(p.Self(), registry.Prefetch{Node: n})
			}
		},
		OnDown: func(n string) {
			if k := c.pending.FailNode(n); k > 0 {
				log.Warn("answered invocations in flight on a lost worker", "worker", n, "count", k)
			}
		},
		OnRunnerDown: func(n string) {
			if k := c.pending.FailNode(n); k > 0 {
				log.Warn("answered invocations in flight on a worker whose runner died", "worker", n, "count", k)
			}
		},
	}
	sender := &send.Sender{} // remote sends with a deadline (a hung worker)
	reg := &registry.Actor{Store: cfg.Store, Table: c.table, Log: log, Sender: sender, Refusals: c.refusals}
	c.registry, c.sender = reg, sender
	var routers []supervisors.Child
	for i := range cfg.Invokers {
		routers = append(routers, supervisors.Child{Name: invoker.RouterName(i), Behavior: &invoker.Router{Pending: c.pending, Log: log, Refusals: c.refusals},
			Fallback: invoker.OverflowName})
	}
	failCalls := func(n string) {
		if k := c.pending.FailNode(n); k > 0 {
			log.Warn("answered invocations in flight on a lost worker", "worker", n, "count", k)
		}
	}
	// Overflow answerers (supervisors.OverflowSuffix): what a full mailbox
	// cannot take is answered, never dropped.
	extra := []supervisors.Child{
		{Name: scheduler.OverflowName, Behavior: &scheduler.Overflow{OnDown: failCalls}, Mailbox: supervisors.MailboxOverflow},
		{Name: registry.OverflowName, Behavior: &registry.Overflow{Log: log}, Mailbox: supervisors.MailboxOverflow},
	}
	if cfg.Discovery.Interface != "" {
		if cfg.Node.ListenPort == 0 {
			p, err := freePort(cfg.Node.ListenHost)
			if err != nil {
				return nil, err
			}
			cfg.Node.ListenPort = p
		}
		extra = append(extra, supervisors.Child{Name: discovery.Name, Mailbox: 64, Behavior: &discovery.Actor{
			Interface: cfg.Discovery.Interface, Cookie: cfg.Node.Cookie, Log: log,
			Announce: &discovery.Beacon{Node: cfg.Node.Name, Host: cfg.Node.ListenHost, Port: int(cfg.Node.ListenPort)},
		}})
	}
	overflow := supervisors.Child{Name: invoker.OverflowName, Behavior: &invoker.Overflow{Log: log, Refusals: c.refusals}}
	apps := []gen.ApplicationBehavior{supervisors.Core(sched, reg, overflow, routers, extra...)}
	if cfg.Store != nil && cfg.Node.TLS.CertFile == "" && cfg.Node.TLS.CAFile == "" && cfg.Node.DataDir != "" {
		a, auth, err := newAuthorityIn(cfg.Store, cfg.Group, cfg.Node.DataDir, cfg.JoinMode, cfg.Node.Cookie, cfg.Node.Name, log)
		if err != nil {
			return nil, err
		}
		c.ca, cfg.Node.auth = a, auth
	} else if cfg.JoinMode == JoinToken {
		return nil, errors.New("node join mode token needs the core's own CA: not with --tls-cert/--tls-ca")
	}
	if cfg.WithWorker != nil {
		wcfg := *cfg.WithWorker
		wcfg.Node = cfg.Node
		app, w, err := workerApp(wcfg, membudget.SingleBox, cfg.Node.Name, []string{cfg.Node.Name}, proc, nil, c.refusals)
		if err != nil {
			return nil, err
		}
		c.worker = w
		apps = append(apps, app)
	}
	n, err := start(&cfg.Node, "core", apps...)
	if err != nil {
		if c.worker != nil {
			c.worker.close()
		}
		return nil, err
	}
	c.node = n
	c.cfg.Node.auth = cfg.Node.auth // Connect's routes use the same identity
	live.Store(&n)
	if c.ca != nil {
		c.ca.disconnect = n.Disconnect
		c.ca.send = func(name string, cert, key []byte) error {
			from := n.ProcessByName(scheduler.Name)
			if from == nil {
				return errors.New("scheduler is restarting; try again")
			}
			return sender.Send(from, gen.ProcessID{Name: reporter.Name, Node: name}, wire.NodeCert{Cert: cert, Key: key})
		}
	}
	c.done = make(chan struct{})
	go func() { n.Wait(); close(c.done) }()
	c.invoker = &invoker.Invoker{
		Table: c.table, Pending: c.pending, Codes: cfg.Store, Process: proc, Routers: cfg.Invokers,
		DefaultTimeout: cfg.DefaultTimeout, Grace: 10 * time.Second, Log: log, Metrics: c.metrics, Sender: sender,
	}
	if c.worker != nil {
		c.invoker.Local, c.invoker.LocalNode = c.worker.runner, cfg.Node.Name
	}
	c.notifier = &registry.Notifier{Process: proc}
	log.Info("core node started", "addr", fmt.Sprintf("%s:%d", cfg.Node.ListenHost, cfg.Node.ListenPort), "single_box", cfg.WithWorker != nil)
	return c, nil
}

// Name is the core node's name.
func (c *Core) Name() string { return c.node.Name() }

// Invoke implements cluster.Invoker. The function's allowed_hosts leave
// for the worker already bounded by what the operator permits its owner
// (egress.Bound over the store's per-subject bounds, read per call so an
// admin change applies at once); the worker then applies its own
// --egress-allow and the internal-address refusal.
func (c *Core) Invoke(ctx context.Context, req cluster.InvokeRequest) (cluster.InvokeResult, error) {
	if c.cfg.Store != nil && len(req.Function.Metadata.AllowedHosts) > 0 {
		hosts, err := egress.Bound(c.cfg.Store.SubjectEgress, req.Function.Owner, req.Function.Metadata.AllowedHosts)
		if err != nil {
			return cluster.InvokeResult{}, err
		}
		req.Function.Metadata.AllowedHosts = hosts // req is a copy; the slice is new
	}
	return c.invoker.Invoke(ctx, req)
}

// FunctionChanged implements cluster.Notifier.
func (c *Core) FunctionChanged(ctx context.Context, ev cluster.FunctionEvent) error {
	return c.notifier.FunctionChanged(ctx, ev)
}

// ErrNoWorkers is what /readyz says while no worker is connected.
var ErrNoWorkers = errors.New("no worker connected")

// ErrNodeStopped is what /readyz says once the core's node has stopped.
var ErrNodeStopped = errors.New("core node stopped")

// Done is closed when the core's node stops, by Stop or because its
// supervision tree gave up; core.Run then exits (the process must not
// outlive its node).
func (c *Core) Done() <-chan struct{} { return c.done }

// Ready implements cluster.Cluster: ready once a worker is connected, never
// after the node stopped.
func (c *Core) Ready() error {
	select {
	case <-c.done:
		return ErrNodeStopped
	default:
	}
	if c.table.Len() == 0 {
		return ErrNoWorkers
	}
	return nil
}

// NodeList implements cluster.Nodes.
func (c *Core) NodeList() []cluster.NodeInfo {
	ws := c.table.Workers()
	out := make([]cluster.NodeInfo, len(ws))
	for i, w := range ws {
		out[i] = cluster.NodeInfo{
			Name: w.Node, Version: w.Version, Arch: w.Arch, OS: w.OS, Tags: w.Tags,
			TotalMemory: w.TotalMemory, FreeMemory: w.FreeMemory,
			MemoryBudget: w.MemoryBudget, MemoryInUse: w.MemoryInUse, MemoryReserved: w.MemoryReserved,
			Load:    float64(w.Running+w.Queued+w.InFlight) / float64(max(w.MaxRunning, 1)),
			Running: w.Running, Queued: w.Queued, MaxRunning: w.MaxRunning,
			Functions: w.Functions, Invocations: w.Invocations, LastReport: w.Seen, ClockSkewMS: w.ClockSkewMS,
		}
	}
	return out
}

// Connect attaches a worker by its node address ("NAME@HOST:PORT" or
// "HOST:PORT" for worker@HOST): the core dials it and announces itself, and
// the worker reports to it from then on.
func (c *Core) Connect(addr string) error {
	p, err := ParsePeer(addr, "worker")
	if err != nil {
		return err
	}
	if err := addRoute(c.node, c.cfg.Node, p); err != nil {
		return err
	}
	if err := c.node.Connect(p.Name); err != nil {
		return fmt.Errorf("connect to %s: %w", p.Name, err)
	}
	// Tell the worker's reporter about this core; its reports follow.
	sched := c.node.ProcessByName(scheduler.Name)
	if sched == nil {
		return errors.New("scheduler is restarting; try again")
	}
	return c.sender.Send(sched, gen.ProcessID{Name: reporter.Name, Node: p.Name}, wire.Join{Node: c.node.Name()})
}

// Stop stops the node and the local worker; the store may be closed once
// it returns (the registry's callback in progress has ended).
func (c *Core) Stop() {
	c.node.Stop()
	c.registry.Close()
	if c.worker != nil {
		c.worker.close()
	}
}

var _ cluster.NodeAuthority = (*Core)(nil)

// JoinMode implements cluster.JoinPolicy.
func (c *Core) JoinMode() string {
	switch {
	case c.ca != nil:
		return string(c.ca.mode)
	case c.cfg.Node.TLS.CAFile != "" || c.cfg.Node.TLS.CertFile != "":
		return "operator-ca"
	default:
		return "cookie"
	}
}

// Issuing implements cluster.NodeAuthority: false with an operator CA.
func (c *Core) Issuing() bool { return c.ca != nil }

// Enroll implements cluster.NodeAuthority: a worker's one-time join token for
// a certificate from the core's CA.
func (c *Core) Enroll(token, name string, csr []byte) (cluster.Enrollment, error) {
	if c.ca == nil {
		return cluster.Enrollment{}, cluster.ErrNoAuthority
	}
	return c.ca.Enroll(token, name, csr)
}

// RevokeNode implements cluster.NodeAuthority: the node's certificate is
// refused from now on (recorded in pebble, synced) and its link dropped,
// so the scheduler loses it at once.
func (c *Core) RevokeNode(name string) error {
	if c.ca == nil {
		return cluster.ErrNoAuthority
	}
	return c.ca.RevokeNode(name)
}

// NodeRevoked drops the link of a worker revoked through another core of
// the group (the record reached this core through the group's log); its
// next handshake is refused by the record.
func (c *Core) NodeRevoked(name string) {
	if c.node != nil {
		c.node.Disconnect(name) // not connected: nothing to drop
	}
}

// RotateNode implements cluster.NodeAuthority.
func (c *Core) RotateNode(name string) (string, error) {
	if c.ca == nil {
		return "", cluster.ErrNoAuthority
	}
	return c.ca.RotateNode(name)
}

// LocalWorker is the single-box worker, or nil.
func (c *Core) LocalWorker() *Worker { return c.worker }
