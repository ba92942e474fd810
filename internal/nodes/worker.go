package nodes

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/node"

	"github.com/edgefaas/edgefaas/internal/actors/discovery"
	"github.com/edgefaas/edgefaas/internal/actors/send"
	"github.com/edgefaas/edgefaas/internal/actors/trust"
	"github.com/edgefaas/edgefaas/internal/actors/wire"
	"github.com/edgefaas/edgefaas/internal/egress"
	"github.com/edgefaas/edgefaas/internal/membudget"
	"github.com/edgefaas/edgefaas/internal/supervisors"
	"github.com/edgefaas/edgefaas/internal/version"
	"github.com/edgefaas/edgefaas/internal/wasm"
	"github.com/edgefaas/edgefaas/internal/worker/actors/cache"
	"github.com/edgefaas/edgefaas/internal/worker/actors/httpclient"
	"github.com/edgefaas/edgefaas/internal/worker/actors/reporter"
	"github.com/edgefaas/edgefaas/internal/worker/actors/runner"
)

// WorkerConfig configures a worker.
type WorkerConfig struct {
	Node NodeConfig
	// Join lists the cores to report to ("HOST:PORT" or "NAME@HOST:PORT").
	Join []string
	// Engine configures the runtime; its CacheDir defaults to
	// DataDir/compiled.
	Engine wasm.Config
	// Egress is the operator's outbound policy for functions.
	Egress egress.Config
	// Budget is the node's memory (internal/membudget); zero: detected
	// (the cgroup limit, else a share of MemAvailable). The guests' share
	// of it becomes Engine.MemoryBudget unless that is set.
	Budget membudget.Budget
	// Tags let functions be pinned to workers (FunLess's tag metadata).
	Tags []string
	// Discovery finds cores with no --join: beacons on a LAN interface,
	// and DNS names ("name:port", a Kubernetes headless service).
	Discovery Discovery
}

// Discovery configures how a node finds its peers without a static list.
type Discovery struct {
	// Interface carries multicast beacons (cores send, workers listen);
	// empty: off. Off by default so no node sends packets onto a network
	// unasked.
	Interface string
	// DNS names workers resolve to cores, "name:port".
	DNS []string
}

// Worker is a running worker application.
type Worker struct {
	Engine *wasm.Engine
	Store  *cache.Store
	Egress *egress.Client
	runner *runner.Actor
	cancel context.CancelFunc
	node   node.Node // set when the worker owns its node
	// refused is why every core refused this worker (wire.Refused), which
	// stopped its node; nil while it was not refused.
	refused atomic.Pointer[string]
	// keepOnRefusal: the worker discovers cores, so a refusal by those it
	// knows does not stop it (another may appear).
	keepOnRefusal bool
	// refusals counts messages refused because of their sender; a single
	// box's worker shares the core's (ownRefusals false: the core exports it).
	refusals    *trust.Refusals
	ownRefusals bool
}

// Refused is why the worker's node stopped because every core it knew
// refused it (its version, docs/RATIONALE.md "Why refuse a worker of another version?"); nil
// otherwise.
func (w *Worker) Refused() error {
	if r := w.refused.Load(); r != nil {
		return errors.New(*r)
	}
	return nil
}

func (w *Worker) refuse(reason string) {
	if w.keepOnRefusal || !w.refused.CompareAndSwap(nil, &reason) {
		return
	}
	if w.node != nil {
		go w.node.Stop() // not from the reporter's own goroutine
	}
}

// workerApp builds the worker application; cores are the nodes to report
// to; join, if not nil, attaches a discovered core.
// refusals counts the messages the worker refuses because of their sender;
// nil: the worker counts them itself (a single box shares the core's).
func workerApp(cfg WorkerConfig, role membudget.Role, self string, cores []string, proc func(string) gen.Process, join func(Peer), refusals *trust.Refusals) (*supervisors.App, *Worker, error) {
	log := cfg.Node.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("node", self)
	ownRefusals := refusals == nil
	if ownRefusals {
		refusals = trust.NewRefusals(log)
	}
	trusted := trust.NewCores(self, cores)
	ecfg := cfg.Engine
	if ecfg.CacheDir == "" && cfg.Node.DataDir != "" {
		ecfg.CacheDir = filepath.Join(cfg.Node.DataDir, "compiled")
	}
	budget := cfg.Budget
	if budget.Bytes <= 0 {
		budget = membudget.Detect(0)
	}
	split := budget.Split(role)
	if ecfg.MemoryBudget == 0 {
		if ecfg.MemoryBudget = split.Guests; ecfg.MemoryBudget <= 0 {
			// The engine reads a zero budget as unbounded: guests and
			// compiles would grow until the kernel kills the node.
			return nil, nil, fmt.Errorf("a memory budget of %s leaves no memory for functions (machinery %s, store %s, upload validation %s): give the node more memory (--memory, or its cgroup's limit)",
				budget, membudget.FormatSize(split.Machinery), membudget.FormatSize(split.Store), membudget.FormatSize(split.Validator))
		}
	}
	if ecfg.CodeBudget == 0 && ecfg.MemoryBudget == split.Guests {
		// The Go limit was set beside this part (membudget.Split.GoHeap).
		ecfg.CodeBudget = split.Code()
	}
	policy := egress.New(cfg.Egress)
	var onCert func(cert, key []byte) error
	if cfg.Node.auth != nil {
		onCert = cfg.Node.auth.rotate
	}
	ecfg.Outbound = &httpclient.Client{Process: proc}
	ctx, cancel := context.WithCancel(context.Background())
	engine, err := wasm.NewEngine(ctx, ecfg)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("wasm engine: %w", err)
	}
	codeDir := ""
	if cfg.Node.DataDir != "" {
		codeDir = filepath.Join(cfg.Node.DataDir, "code")
	}
	changed := func() {
		if p := proc(reporter.Name); p != nil {
			p.Send(p.Self(), reporter.Changed{})
		}
	}
	store, err := cache.NewStore(engine, codeDir, 0, changed)
	if err != nil {
		cancel()
		engine.Close(ctx)
		return nil, nil, err
	}
	maxRunning := ecfg.MaxConcurrent
	if maxRunning <= 0 {
		maxRunning = 64
	}
	usage := &runner.Usage{}
	run := &runner.Actor{Engine: engine, Store: store, Usage: usage, Node: self, Log: log, Ctx: ctx, Process: proc,
		Cores: trusted, Refusals: refusals}
	extra := []supervisors.Child{ // cache's overflow answerer (supervisors.OverflowSuffix)
		{Name: cache.OverflowName, Behavior: &cache.Overflow{Store: store, Node: self, Log: log}, Mailbox: supervisors.MailboxOverflow},
	}
	if join != nil && (cfg.Discovery.Interface != "" || len(cfg.Discovery.DNS) > 0) {
		extra = append(extra, supervisors.Child{Name: discovery.Name, Mailbox: 64, Behavior: &discovery.Actor{
			Interface: cfg.Discovery.Interface, Cookie: cfg.Node.Cookie, DNS: cfg.Discovery.DNS, Log: log,
			OnCore: func(b discovery.Beacon) { join(Peer{Name: b.Node, Host: b.Host, Port: uint16(b.Port)}) },
		}})
	}
	w := &Worker{Engine: engine, Store: store, Egress: policy, runner: run, cancel: cancel,
		refusals: refusals, ownRefusals: ownRefusals,
		keepOnRefusal: cfg.Discovery.Interface != "" || len(cfg.Discovery.DNS) > 0}
	app := supervisors.Worker(supervisors.WorkerActors{
		RunnerOverflow: &runner.Overflow{Node: self},
		Cache:          &cache.Actor{Store: store, Node: self, Log: log, Process: proc, Cores: trusted, Refusals: refusals},
		Runner:         run,
		Reporter: &reporter.Actor{Cores: cores, Engine: engine, Store: store, Usage: usage, Node: self, Tags: cfg.Tags,
			Budget: budget.Bytes, GuestMemory: ecfg.MemoryBudget, RSS: membudget.RSS, MaxRunning: maxRunning, Host: cfg.Node.ListenHost, Port: int(cfg.Node.ListenPort), Log: log,
			Sender: &send.Sender{Timeout: 2 * time.Second}, OnCert: onCert,
			Version: version.Get().Version, OnRefused: w.refuse, Trusted: trusted, Refusals: refusals},
		HTTPClient:   &httpclient.Actor{Policy: policy, Log: log},
		HTTPOverflow: &httpclient.Overflow{},
	}, extra...)
	return app, w, nil
}

// StartWorker starts a worker node that reports to the cores in cfg.Join.
func StartWorker(cfg WorkerConfig) (*Worker, error) {
	if len(cfg.Join) == 0 && cfg.Discovery.Interface == "" && len(cfg.Discovery.DNS) == 0 {
		return nil, fmt.Errorf("a worker needs a core: --join HOST:PORT, --join-dns NAME:PORT or --lan-discovery IFACE")
	}
	var peers []Peer
	var cores []string
	for _, j := range cfg.Join {
		p, err := ParsePeer(j, "core")
		if err != nil {
			return nil, err
		}
		peers = append(peers, p)
		cores = append(cores, p.Name)
	}
	if cfg.Node.ListenHost == "" {
		cfg.Node.ListenHost = "127.0.0.1"
	}
	if cfg.Node.ListenPort == 0 {
		port, err := freePort(cfg.Node.ListenHost)
		if err != nil {
			return nil, err
		}
		cfg.Node.ListenPort = port
	}
	name := cfg.Node.Name
	if name == "" {
		name = "worker@" + cfg.Node.ListenHost
	}
	cfg.Node.Name = name
	if cfg.Node.TLS.CertFile == "" {
		// A worker that joined with a token presents the certificate its
		// core issued (DATA_DIR/node-tls); otherwise the cookie's.
		auth, err := loadEnrollment(cfg.Node.DataDir, name)
		if err != nil {
			return nil, err
		}
		cfg.Node.auth = auth
	}
	var n node.Node
	proc := func(s string) gen.Process {
		if n == nil {
			return nil
		}
		return n.ProcessByName(s)
	}
	var known sync.Map // cores already attached
	for _, c := range cores {
		known.Store(c, true)
	}
	join := func(p Peer) {
		if _, seen := known.LoadOrStore(p.Name, true); seen || n == nil {
			return
		}
		if err := addRoute(n, cfg.Node, p); err != nil {
			known.Delete(p.Name)
			return
		}
		if r := n.ProcessByName(reporter.Name); r != nil {
			r.Send(r.Self(), wire.Join{Node: p.Name})
		}
	}
	app, w, err := workerApp(cfg, membudget.Worker, name, cores, proc, join, nil)
	if err != nil {
		return nil, err
	}
	// Start the node without applications, add the routes to the cores,
	// then start the worker tree: the reporter's first report already has
	// a route.
	n, err = start(&cfg.Node, "worker")
	if err != nil {
		w.close()
		return nil, err
	}
	w.node = n // before the reporter runs: a refusal stops the node
	for _, p := range peers {
		if err := addRoute(n, cfg.Node, p); err != nil {
			n.Stop()
			w.close()
			return nil, fmt.Errorf("route to core %s: %w", p.Name, err)
		}
	}
	if _, err := n.ApplicationLoad(app); err != nil {
		n.Stop()
		w.close()
		return nil, fmt.Errorf("load worker application: %w", err)
	}
	if _, err := n.ApplicationStartPermanent(app.Name); err != nil {
		n.Stop()
		w.close()
		return nil, fmt.Errorf("start worker application: %w", err)
	}
	return w, nil
}

// Name is the worker node's name (empty in a single-box node).
func (w *Worker) Name() string {
	if w.node == nil {
		return ""
	}
	return w.node.Name()
}

// Wait blocks until the worker's node stops.
func (w *Worker) Wait() {
	if w.node != nil {
		w.node.Wait()
	}
}

// Stop stops the worker (and its node, if it owns one).
func (w *Worker) Stop() {
	if w.node != nil {
		w.node.Stop()
	}
	w.close()
}

func (w *Worker) close() {
	w.cancel()
	w.Engine.Close(context.Background())
}
