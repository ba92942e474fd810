// Package supervisors holds the shapes of edgefaas's supervision trees,
// apart from what the actors do (actors/) and how nodes are assembled
// (nodes/), as in Erlang/OTP.
//
// Each node runs one ergo application per role (core, worker); each
// application has one top supervisor, one_for_one, over that role's
// actors: a crashed actor is restarted alone, with its registered name, so
// senders that address it by name reach the new process.
//
// Restart intensity: 10 restarts within 5 seconds. One crash per
// invocation storm is tolerated (an actor crash does not lose the
// invocations running on their own goroutines), but a crash loop, which
// means a bug or a broken dependency (storage gone), stops the
// application, and the node with it, so that systemd or Kubernetes
// restarts the process cleanly instead of it limping on.
package supervisors

import (
	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
)

// Intensity and Period are the restart limits of every tree.
const (
	Intensity = 10
	Period    = 5 // seconds
)

// OverflowSuffix names overflow answerers: a child named N+OverflowSuffix
// in the same tree is N's fallback (unless N names another), the process
// ergo hands what N's full mailbox cannot take, so that no request is
// dropped silently.
const OverflowSuffix = "_overflow"

// Child is one supervised actor: its registered name, its behaviour and
// its mailbox size (and an optional fallback process for overflow).
type Child struct {
	Name     string
	Behavior gen.ProcessBehavior
	Mailbox  uint16
	Fallback string
}

// Tree is a one_for_one supervisor over children.
type Tree struct {
	gen.Supervisor
	Name     string
	Children []Child
}

// Init returns the supervisor's spec.
func (t *Tree) Init(_ ...etf.Term) (gen.SupervisorSpec, error) {
	spec := gen.SupervisorSpec{
		Name: t.Name,
		Strategy: gen.SupervisorStrategy{
			Type:      gen.SupervisorStrategyOneForOne,
			Intensity: Intensity,
			Period:    Period,
			Restart:   gen.SupervisorStrategyRestartPermanent,
		},
	}
	names := map[string]bool{}
	for _, c := range t.Children {
		names[c.Name] = true
	}
	for _, c := range t.Children {
		if c.Fallback == "" && names[c.Name+OverflowSuffix] {
			c.Fallback = c.Name + OverflowSuffix
		}
		opts := gen.ProcessOptions{MailboxSize: c.Mailbox}
		if c.Fallback != "" {
			opts.Fallback = gen.ProcessFallback{Name: c.Fallback, Tag: c.Name}
		}
		child := c.Behavior
		if sb, ok := child.(gen.ServerBehavior); ok {
			child = &guard{ServerBehavior: sb} // see backoff.go
		}
		spec.Children = append(spec.Children, gen.SupervisorChildSpec{Name: c.Name, Child: child, Options: opts})
	}
	return spec, nil
}

// App is an ergo application whose only child is its top supervisor. It
// is started permanent: if the tree gives up, the node stops.
type App struct {
	gen.Application
	Name string
	Top  *Tree
}

// Load returns the application's spec.
func (a *App) Load(_ ...etf.Term) (gen.ApplicationSpec, error) {
	return gen.ApplicationSpec{
		Name:      a.Name,
		Children:  []gen.ApplicationChildSpec{{Name: a.Top.Name, Child: a.Top}},
		StartType: gen.ApplicationStartPermanent,
	}, nil
}

// Start is called once the application's children run.
func (a *App) Start(_ gen.Process, _ ...etf.Term) {}

// Mailbox sizes. ergo allocates each process's mailbox, graceful-exit
// channel and (gen.Server) deferred queue with this capacity, ~144 B per
// slot in all, resident once a busy process has cycled through them: 65,535
// slots cost ~9 MiB per process. Each size is what the process carries
// between two turns of its loop; a process whose mailbox can overflow with
// requests falls back to an overflow process that answers them (runner,
// httpclient, invokers), so nothing is dropped silently.
const (
	// MailboxScheduler carries workers' reports (one a second each) and
	// node monitor messages.
	MailboxScheduler = 1024
	// MailboxRegistry carries code pushes' acknowledgements and prefetches.
	MailboxRegistry = 1024
	// MailboxInvoker carries workers' answers; each is handed to its
	// waiting goroutine at once. Overflow goes to the invoker overflow.
	MailboxInvoker = 1024
	// MailboxRunner carries invocations; each starts its goroutine at once
	// and waits in the engine's bounded queue. Overflow is answered busy.
	MailboxRunner = 2048
	// MailboxCache carries code pushes (compiled one at a time).
	MailboxCache = 1024
	// MailboxHTTPClient carries guests' outbound requests, each run on its
	// own goroutine; overflow is answered busy.
	MailboxHTTPClient = 1024
	// MailboxOverflow is every overflow answerer's: it only sends replies.
	MailboxOverflow = 1024
	// MailboxReporter carries its own ticks, cache changes and joins.
	MailboxReporter = 64
)

// Core is the core node's tree: the scheduler (worker table, node
// monitors), the registry (code distribution) and the invoker processes
// (answer routing), which must outlive any one request, after the invoker
// overflow they fall back to. Invokers are named by the caller
// (actors/invoker.RouterName; overflow is the overflow's name and
// behaviour); extra children (discovery) come last.
func Core(scheduler, registry gen.ProcessBehavior, overflow Child, invokers []Child, extra ...Child) *App {
	overflow.Mailbox = MailboxOverflow
	t := &Tree{Name: "core_sup", Children: []Child{
		{Name: "scheduler", Behavior: scheduler, Mailbox: MailboxScheduler},
		{Name: "registry", Behavior: registry, Mailbox: MailboxRegistry},
		overflow,
	}}
	for _, c := range invokers {
		c.Mailbox = MailboxInvoker
		c.Fallback = overflow.Name
		t.Children = append(t.Children, c)
	}
	t.Children = append(t.Children, extra...)
	return &App{Name: "edgefaas_core", Top: t}
}

// WorkerActors are the behaviours of a worker's tree.
type WorkerActors struct {
	RunnerOverflow, Cache, Runner, Reporter gen.ProcessBehavior
	HTTPClient, HTTPOverflow                gen.ProcessBehavior
}

// Worker is the worker node's tree: each overflow answerer before the
// actor that falls back to it, then the HTTP-client actor that functions'
// outbound requests yield to, the cache, the runner and the reporter, then
// extra children (discovery).
func Worker(a WorkerActors, extra ...Child) *App {
	return &App{Name: "edgefaas_worker", Top: &Tree{Name: "worker_sup", Children: append([]Child{
		{Name: "httpclient_overflow", Behavior: a.HTTPOverflow, Mailbox: MailboxOverflow},
		{Name: "httpclient", Behavior: a.HTTPClient, Mailbox: MailboxHTTPClient, Fallback: "httpclient_overflow"},
		{Name: "runner_overflow", Behavior: a.RunnerOverflow, Mailbox: MailboxOverflow},
		{Name: "cache", Behavior: a.Cache, Mailbox: MailboxCache},
		{Name: "runner", Behavior: a.Runner, Mailbox: MailboxRunner, Fallback: "runner_overflow"},
		{Name: "reporter", Behavior: a.Reporter, Mailbox: MailboxReporter},
	}, extra...)}}
}
