// Package core is the core node: it assembles, in named steps, the parts
// that make the core — storage, the activation recorder, the sinks, the
// triggers, the cluster of workers, the invocation service, the
// asynchronous queue and the HTTP API — runs them until its context ends,
// and stops them in the reverse order. It is the body of `edgefaas core`
// and of the single-process development mode.
package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/activations"
	"github.com/edgefaas/edgefaas/internal/core/api"
	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/invocation"
	"github.com/edgefaas/edgefaas/internal/core/replication"
	"github.com/edgefaas/edgefaas/internal/core/secrets"
	"github.com/edgefaas/edgefaas/internal/core/sinks"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/egress"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// Config configures the core.
type Config struct {
	// DataDir holds the database (DataDir/db) and the tokens file.
	DataDir string
	// HTTPAddr is the listen address, e.g. 127.0.0.1:4000; port 0 picks one
	// (the chosen address is logged and passed to Listening).
	HTTPAddr string
	// MaxUploadBytes bounds uploaded code; 0 means api.DefaultMaxUploadBytes.
	MaxUploadBytes int64
	// BodyBudget bounds the request bodies held at once (api.Config);
	// 0 means api.DefaultBodyBudget.
	BodyBudget int64
	// PublicMetrics serves /metrics without a token (for scrapers that
	// cannot send one); off by default.
	PublicMetrics bool
	// Inspect validates uploads (see api.Config.Inspect).
	Inspect func(ctx context.Context, code []byte) (wasm.ModuleInfo, error)
	// Logger receives everything, pebble's lines included; nil means
	// slog.Default().
	Logger *slog.Logger
	// Cluster, if set, is called once storage is open to start the core's
	// node and attach the workers (nodes.StartCore in the binary); nil runs
	// the API alone (invocations answer 503). records is nil on a single
	// core; on a member of a core group it is the group's log, which the
	// node CA's tokens and records go through (nodes.GroupTrust).
	Cluster func(store *storage.Store, records storage.NodeRecords) (cluster.Cluster, error)
	// Listening, if set, is called with the bound address before serving.
	Listening func(addr net.Addr)
	// Storage sizes the database's memory (zero: pebble's defaults).
	Storage storage.Options
	// SecretsKeyFile is the key file that seals the secrets kept at rest
	// (sink passwords, webhook secrets, MQTT passwords; package secrets),
	// created on first boot; empty means DataDir/secrets.key.
	SecretsKeyFile string
	// TLS says when the API serves HTTPS (default api.TLSAuto: unless it
	// listens on loopback). TLSCertFile and TLSKeyFile are the operator's
	// certificate; without them a self-signed one is made on first boot in
	// DataDir/http-tls and its SHA-256 fingerprint is logged for clients to
	// pin.
	TLS                     api.TLSMode
	TLSCertFile, TLSKeyFile string
	// ServingTLS, if set, is called with the certificate's fingerprint
	// before Listening when the API serves HTTPS.
	ServingTLS func(fingerprint string)
	// ShutdownGrace bounds how long in-flight requests may take to finish
	// after ctx ends; 0 means 30 s.
	ShutdownGrace time.Duration
	// Activations configures the records and the asynchronous queue.
	Activations ActivationsConfig
	// Triggers configures functions' events (MQTT, cron) and the
	// embedded MQTT broker.
	Triggers TriggersConfig
	// Group, if set, makes the core a member of a core group (group.go):
	// its writes go through the group's replicated log. Nil: a single
	// core, exactly as without groups.
	Group *GroupConfig
	// Sinks configures the delivery of results to functions' sinks: its
	// HTTP and Dial reach them under the operator's egress policy (Store
	// and Log are filled in).
	Sinks sinks.Config
}

// ActivationsConfig sizes the activation records and the asynchronous
// queue; zero values take the activations package's defaults.
type ActivationsConfig struct {
	// Retention and MaxBytes bound the records by age and total size;
	// PruneEvery is how often retention runs.
	Retention  time.Duration
	MaxBytes   int64
	PruneEvery time.Duration
	// MaxFunctionLabels bounds the per-function metric series.
	MaxFunctionLabels int
	// NoSyncRecords keeps no record of synchronous invocations (see
	// invocation.Config.NoSyncRecords).
	NoSyncRecords bool
	// Queue holds the queue's limits (Store, Recorder, Run and Callbacks
	// are filled in).
	Queue activations.QueueConfig
	// Callback POSTs completion callbacks under the operator's callback
	// egress policy; the sinks' dispatcher delivers them from its outbox
	// (nil: callbacks fail, logged).
	Callback sinks.CallbackFunc
}

// ErrClusterStopped is Run's error when the core's node stopped on its
// own (its supervision tree gave up).
var ErrClusterStopped = errors.New("core node stopped: its supervision tree exceeded its restart intensity")

// Run opens the storage in cfg.DataDir, creates the first tokens on the
// first boot, serves the API on cfg.HTTPAddr until ctx ends, then lets
// in-flight requests finish and stops every part in the reverse order of
// its start, the storage last.
func Run(ctx context.Context, cfg Config) (err error) {
	c := &assembly{cfg: cfg, log: cfg.Logger}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.cfg.ShutdownGrace <= 0 {
		c.cfg.ShutdownGrace = 30 * time.Second
	}
	defer func() {
		if serr := c.stop(); serr != nil && err == nil {
			err = serr
		}
	}()
	for _, step := range []struct {
		name string
		run  func() error
	}{
		{"open storage", c.openStorage},
		{"start the recorder and sinks", c.startRecords},
		{"start the triggers", c.startTriggers},
		{"start the cluster", c.startCluster},
		{"build the invocation service and API", c.buildAPI},
		{"start the asynchronous queue", c.startQueue},
		{"run the triggers", c.runTriggers},
	} {
		if err := step.run(); err != nil {
			return fmt.Errorf("%s: %w", step.name, err)
		}
	}
	return c.serve(ctx)
}

// assembly is the core being built: each step fills its parts and pushes
// how to stop them.
type assembly struct {
	cfg   Config
	log   *slog.Logger
	stops []func() error // run last first

	store       *storage.Store
	metrics     *activations.Metrics
	dispatcher  *sinks.Dispatcher
	recorder    *activations.Recorder
	triggers    *triggersPart
	cluster     cluster.Cluster // nil: the API alone
	invocations *invocation.Service
	server      *api.Server
	group       *groupPart // nil: a single core
	logOpts     replication.LogOptions
	keys        *secrets.Keyring // the store's secrets keys
}

// onStop registers how to stop the part just started.
func (c *assembly) onStop(f func() error) { c.stops = append(c.stops, f) }

// stop stops every started part, last started first; the first error wins.
func (c *assembly) stop() error {
	var first error
	for i := len(c.stops) - 1; i >= 0; i-- {
		if err := c.stops[i](); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// grace is a context bounded by the shutdown grace, for a part's Stop.
func (c *assembly) grace(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// openStorage opens pebble in DataDir/db and writes the first tokens on
// the first boot.
func (c *assembly) openStorage() error {
	if c.cfg.DataDir == "" {
		return errors.New("no data directory given")
	}
	if err := os.MkdirAll(c.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	keyFile := c.cfg.SecretsKeyFile
	if keyFile == "" {
		keyFile = filepath.Join(c.cfg.DataDir, secrets.FileName)
	}
	keys, created, err := secrets.LoadOrCreate(keyFile)
	if err != nil {
		return err
	}
	if created {
		c.log.Info("created the secrets key; back it up apart from the database: the sealed secrets cannot be read without it", "path", keyFile)
	}
	c.keys = keys
	opts := c.cfg.Storage
	if c.cfg.Group != nil {
		// The group's log database is sized from the store's share.
		opts, c.logOpts = splitForLog(opts)
		// The log may hold entries sealed under an older key of the
		// group's, which a joining member replays.
		keys.KeepOldKeys()
	}
	opts.Secrets = keys
	store, err := storage.OpenWith(filepath.Join(c.cfg.DataDir, "db"), c.log, opts)
	if err != nil {
		return err
	}
	c.store = store
	c.onStop(store.Close)
	// Secrets written in plain text (by an earlier version) or under a
	// key a rotation was interrupted before retiring are sealed now,
	// before anything else writes.
	n, err := store.SealSecrets()
	if err != nil {
		return fmt.Errorf("seal the secrets at rest with %s: %w", keyFile, err)
	}
	if n > 0 {
		c.log.Info("sealed the secrets at rest", "records", n, "key", keys.Current())
	}
	if c.cfg.Group != nil {
		// A group's first tokens are written through its log.
		return c.startGroup()
	}
	tokensPath := filepath.Join(c.cfg.DataDir, storage.TokensFileName)
	created, err = store.Bootstrap(tokensPath)
	if err != nil {
		return fmt.Errorf("first-boot tokens: %w", err)
	}
	if created {
		c.log.Info("first boot: wrote the admin and guest tokens; keep the file secret", "path", tokensPath)
	}
	return nil
}

// bound is the operator's egress bound of subject for url: what sinks and
// callbacks sent on a subject's behalf may reach.
func (c *assembly) bound(subject, url string) error {
	return egress.Permits(c.store.SubjectEgress, subject, url)
}

// subjectActive reports whether subject exists and is not revoked (an
// error reading it counts as not active, logged).
func (c *assembly) subjectActive(subject string) bool {
	sub, err := c.store.GetSubject(subject)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return false
	case err != nil:
		c.log.Warn("read subject", "subject", subject, "err", err)
		return false
	}
	return !sub.Revoked()
}

// startRecords starts the sinks' dispatcher and the activation recorder
// (which carries the sinks' outbox). The recorder closes after the queue
// and the cluster stopped; the dispatcher after the queue, whose last
// results go to the outbox.
func (c *assembly) startRecords() error {
	c.metrics = activations.NewMetrics(c.cfg.Activations.MaxFunctionLabels)
	sc := c.cfg.Sinks
	sc.Store, sc.Log, sc.Bound = c.store, c.log, c.bound
	if sc.Callback == nil {
		sc.Callback = c.cfg.Activations.Callback
	}
	if sc.Active == nil {
		// A callback goes out on its subject's behalf: not once revoked.
		sc.Active = c.subjectActive
	}
	c.dispatcher = sinks.New(sc)
	rcfg := activations.RecorderConfig{
		Store: c.store, Log: c.log, Metrics: c.metrics, Sinks: c.dispatcher,
		Retention: c.cfg.Activations.Retention, MaxBytes: c.cfg.Activations.MaxBytes, PruneEvery: c.cfg.Activations.PruneEvery,
	}
	if c.group != nil {
		rcfg.Group, rcfg.FlushEvery = c.group.member.Writes(), activations.GroupFlushEvery
	}
	c.recorder = activations.NewRecorder(rcfg)
	c.onStop(func() error { c.recorder.Close(); return nil })
	if err := c.dispatcher.Start(); err != nil {
		return err
	}
	c.onStop(func() error {
		ctx, cancel := c.grace(sinks.DefaultTimeout + time.Second)
		defer cancel()
		c.dispatcher.Stop(ctx)
		return nil
	})
	return nil
}

// startCluster starts the core's node and attaches the workers; it stops
// after the HTTP server has shut down, before storage closes.
func (c *assembly) startCluster() error {
	if c.cfg.Cluster == nil {
		return nil
	}
	var records storage.NodeRecords
	if c.group != nil {
		records = c.group.member.Writes()
	}
	cl, err := c.cfg.Cluster(c.store, records)
	if err != nil {
		return err
	}
	c.cluster = cl
	c.onStop(func() error { cl.Stop(); return nil })
	return nil
}

// buildAPI builds the invocation service every entry point uses and the
// HTTP API over it, and registers every part's metrics on /metrics.
func (c *assembly) buildAPI() error {
	var invoker cluster.Invoker
	scfg := api.Config{Store: c.store, Logger: c.log, MaxUploadBytes: c.cfg.MaxUploadBytes, BodyBudget: c.cfg.BodyBudget, PublicMetrics: c.cfg.PublicMetrics,
		Inspect: c.cfg.Inspect, Triggers: c.triggers.manager, DataDir: c.cfg.DataDir, FunctionGone: c.metrics.Forget}
	if c.group != nil {
		scfg.Writes, scfg.Group, scfg.GroupRemove = c.group.member.Writes(), c.group.members, c.group.remove
		scfg.CatchUp = c.group.member.CatchUp
	}
	if c.cluster != nil {
		invoker = c.cluster
		scfg.Notifier, scfg.Ready, scfg.Nodes = c.cluster, c.cluster.Ready, c.cluster
	}
	icfg := invocation.Config{Store: c.store, Invoker: invoker, Recorder: c.recorder, Sinks: c.dispatcher,
		NoSyncRecords: c.cfg.Activations.NoSyncRecords, Log: c.log}
	if c.group != nil {
		icfg.Journal = c.group.member.Writes()
	}
	inv, err := invocation.New(icfg)
	if err != nil {
		return err
	}
	c.invocations, scfg.Invocations = inv, inv
	c.triggers.invocations = inv
	if c.server, err = api.New(scfg); err != nil {
		return err
	}
	reg := c.server.Registry()
	if c.cluster != nil {
		if err := reg.Register(c.cluster); err != nil {
			return fmt.Errorf("register cluster metrics: %w", err)
		}
	}
	if err := reg.Register(c.metrics); err != nil {
		return fmt.Errorf("register activation metrics: %w", err)
	}
	if err := reg.Register(c.triggers.manager); err != nil {
		return fmt.Errorf("register trigger metrics: %w", err)
	}
	if err := reg.Register(c.dispatcher); err != nil {
		return fmt.Errorf("register sink metrics: %w", err)
	}
	return nil
}

// startQueue recovers what a previous run left queued and dispatches; it
// stops before the cluster (running activations use it).
func (c *assembly) startQueue() error {
	qcfg := c.cfg.Activations.Queue
	if qcfg.Callbacks == nil {
		// Callbacks go to the sinks' outbox with their records and out
		// through its bounded pool, within the submitter's egress bound.
		qcfg.Callbacks = c.dispatcher
	}
	if c.group != nil {
		return c.startGroupQueue(qcfg)
	}
	queue, err := c.invocations.StartQueue(qcfg)
	if err != nil {
		return err
	}
	c.onStop(func() error {
		ctx, cancel := c.grace(c.cfg.ShutdownGrace)
		defer cancel()
		queue.Stop(ctx)
		return nil
	})
	return nil
}

// runTriggers starts the triggers; they stop before the queue they feed.
// In a core group they run while this core leads (group.go).
func (c *assembly) runTriggers() error {
	if c.group != nil {
		return c.runGroupTriggers()
	}
	if err := c.triggers.manager.Start(); err != nil {
		return err
	}
	c.onStop(func() error {
		ctx, cancel := c.grace(c.cfg.ShutdownGrace)
		defer cancel()
		c.triggers.manager.Stop(ctx)
		return nil
	})
	return nil
}

// serve answers requests until ctx ends or the cluster's node stops on its
// own, then lets in-flight requests finish.
func (c *assembly) serve(ctx context.Context) error {
	ln, fingerprint, err := c.server.Listen(api.ListenConfig{Addr: c.cfg.HTTPAddr, TLS: c.cfg.TLS,
		CertFile: c.cfg.TLSCertFile, KeyFile: c.cfg.TLSKeyFile, DataDir: c.cfg.DataDir})
	if err != nil {
		return err
	}
	scheme := "http"
	if fingerprint != "" {
		scheme = "https"
		c.log.Info("API TLS: clients pin this certificate with --tls-fingerprint (or trust its CA with --ca-file)",
			"fingerprint", fingerprint, "self_signed", c.cfg.TLSCertFile == "")
		if c.cfg.ServingTLS != nil {
			c.cfg.ServingTLS(fingerprint)
		}
	}
	c.log.Info("core listening", "addr", ln.Addr().String(), "scheme", scheme, "data_dir", c.cfg.DataDir)
	if c.cfg.Listening != nil {
		c.cfg.Listening(ln.Addr())
	}
	var clusterDone <-chan struct{} // closed if the cluster's node stops on its own
	if c.cluster != nil {
		clusterDone = c.cluster.Done()
	}
	served := make(chan error, 1)
	go func() { served <- c.server.Serve(ln) }()
	var stopped error
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	case <-clusterDone:
		// The node's supervision tree gave up (restart intensity exceeded):
		// nothing can run any more. Exit non-zero so systemd or Kubernetes
		// restarts the process, rather than serving /healthz as a zombie.
		stopped = ErrClusterStopped
		c.log.Error("core node stopped: its supervision tree gave up; exiting so the process is restarted")
	}
	c.log.Info("shutting down: waiting for in-flight requests")
	sctx, cancel := c.grace(c.cfg.ShutdownGrace)
	defer cancel()
	if err := c.server.Shutdown(sctx); err != nil {
		c.log.Warn("in-flight requests did not finish in time", "err", err)
	}
	if err := <-served; err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if stopped != nil {
		return stopped
	}
	c.log.Info("stopped")
	return nil
}
