package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgefaas/edgefaas/internal/cluster"
	"github.com/edgefaas/edgefaas/internal/core/activations"
	"github.com/edgefaas/edgefaas/internal/core/sinks"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/egress"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// CoreConfig configures RunCore, the whole core node's HTTP side.
type CoreConfig struct {
	// DataDir holds the database (DataDir/db) and the tokens file.
	DataDir string
	// HTTPAddr is the listen address, e.g. 127.0.0.1:4000; port 0 picks one
	// (the chosen address is logged and passed to Listening).
	HTTPAddr string
	// MaxUploadBytes bounds uploaded code; 0 means DefaultMaxUploadBytes.
	MaxUploadBytes int64
	// PublicMetrics serves /metrics without a token (for scrapers that
	// cannot send one); off by default.
	PublicMetrics bool
	// Inspect validates uploads (see Config.Inspect).
	Inspect func(ctx context.Context, code []byte) (wasm.ModuleInfo, error)
	// Logger receives everything, pebble's lines included; nil means
	// slog.Default().
	Logger *slog.Logger
	// Cluster, if set, is called once storage is open to attach the workers;
	// nil runs the API alone (invocations answer 503). If the cluster also
	// implements Nodes, /v1/nodes uses it; if it has a Stop method, it is
	// called after the HTTP server has shut down, before storage closes.
	Cluster func(store *storage.Store) (cluster.Cluster, error)
	// Listening, if set, is called with the bound address before serving.
	Listening func(addr net.Addr)
	// Storage sizes the database's memory (zero: pebble's defaults).
	Storage storage.Options
	// TLS says when the API serves HTTPS (default TLSAuto: unless it
	// listens on loopback). TLSCertFile and TLSKeyFile are the operator's
	// certificate; without them a self-signed one is made on first boot in
	// DataDir/http-tls and its SHA-256 fingerprint is logged for clients to
	// pin.
	TLS                     TLSMode
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
	// Config.NoSyncRecords).
	NoSyncRecords bool
	// Queue holds the queue's limits and its callback sender (Store,
	// Recorder and Run are filled in).
	Queue activations.QueueConfig
}

// RunCore opens the storage in cfg.DataDir, creates the first tokens on the
// first boot, serves the API on cfg.HTTPAddr until ctx ends, then lets
// in-flight requests finish and closes the storage. It is the body of
// `edgefaas core` and of the single-process development mode.
func RunCore(ctx context.Context, cfg CoreConfig) (err error) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if cfg.DataDir == "" {
		return errors.New("no data directory given")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	store, err := storage.OpenWith(filepath.Join(cfg.DataDir, "db"), log, cfg.Storage)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := store.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	tokensPath := filepath.Join(cfg.DataDir, storage.TokensFileName)
	created, err := store.Bootstrap(tokensPath)
	if err != nil {
		return fmt.Errorf("first-boot tokens: %w", err)
	}
	if created {
		log.Info("first boot: wrote the admin and guest tokens; keep the file secret", "path", tokensPath)
	}

	ametrics := activations.NewMetrics(cfg.Activations.MaxFunctionLabels)
	sinkCfg := cfg.Sinks
	sinkCfg.Store, sinkCfg.Log = store, log
	sinkCfg.Bound = func(subject, url string) error { return egress.Permits(store.SubjectEgress, subject, url) }
	dispatcher := sinks.New(sinkCfg)
	recorder := activations.NewRecorder(activations.RecorderConfig{
		Store: store, Log: log, Metrics: ametrics, Sinks: dispatcher,
		Retention: cfg.Activations.Retention, MaxBytes: cfg.Activations.MaxBytes, PruneEvery: cfg.Activations.PruneEvery,
	})
	defer recorder.Close() // after the queue and the cluster stopped, before storage closes
	if err := dispatcher.Start(); err != nil {
		return err
	}
	defer func() { // after the queue stopped (its last results go to the outbox)
		sctx, cancel := context.WithTimeout(context.Background(), sinks.DefaultTimeout+time.Second)
		defer cancel()
		dispatcher.Stop(sctx)
	}()

	var srv *Server // the triggers' Enqueue reaches it once it exists
	trig, stopBroker, err := startTriggers(cfg.Triggers, cfg.DataDir, store, log, &srv)
	if err != nil {
		return err
	}
	defer stopBroker() // after the triggers stopped
	scfg := Config{Store: store, Logger: log, MaxUploadBytes: cfg.MaxUploadBytes, PublicMetrics: cfg.PublicMetrics, Inspect: cfg.Inspect, Recorder: recorder, Triggers: trig, Sinks: dispatcher, NoSyncRecords: cfg.Activations.NoSyncRecords}
	var collector prometheus.Collector // the cluster's metrics, if it has some
	var clusterDone <-chan struct{}    // closed if the cluster's node stops on its own
	if cfg.Cluster != nil {
		cl, err := cfg.Cluster(store)
		if err != nil {
			return fmt.Errorf("start cluster: %w", err)
		}
		scfg.Invoker, scfg.Notifier, scfg.Ready = cl, cl, cl.Ready
		if n, ok := cl.(Nodes); ok {
			scfg.Nodes = n
		}
		collector, _ = cl.(prometheus.Collector)
		if d, ok := cl.(interface{ Done() <-chan struct{} }); ok {
			clusterDone = d.Done()
		}
		if st, ok := cl.(interface{ Stop() }); ok {
			defer st.Stop()
		}
	}
	srv, err = New(scfg)
	if err != nil {
		return err
	}
	if collector != nil {
		if err := srv.Registry().Register(collector); err != nil {
			return fmt.Errorf("register cluster metrics: %w", err)
		}
	}
	if err := srv.Registry().Register(ametrics); err != nil {
		return fmt.Errorf("register activation metrics: %w", err)
	}
	if err := srv.Registry().Register(trig); err != nil {
		return fmt.Errorf("register trigger metrics: %w", err)
	}
	if err := srv.Registry().Register(dispatcher); err != nil {
		return fmt.Errorf("register sink metrics: %w", err)
	}
	grace := cfg.ShutdownGrace
	if grace <= 0 {
		grace = 30 * time.Second
	}
	qcfg := cfg.Activations.Queue
	if qcfg.CallbackBound == nil {
		// Callbacks go out on the submitter's behalf: within its egress bound.
		qcfg.CallbackBound = func(subject, url string) error { return egress.Permits(store.SubjectEgress, subject, url) }
	}
	queue, err := srv.StartQueue(qcfg)
	if err != nil {
		return err
	}
	defer func() { // before the cluster stops: running activations use it
		qctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		queue.Stop(qctx)
	}()
	if err := trig.Start(); err != nil {
		return err
	}
	defer func() { // before the queue stops: triggers feed it
		tctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		trig.Stop(tctx)
	}()
	useTLS, err := wantTLS(cfg.TLS, cfg.HTTPAddr, cfg.TLSCertFile != "" || cfg.TLSKeyFile != "")
	if err != nil {
		return err
	}
	var tlsCfg *tls.Config
	var fingerprint string
	if useTLS {
		if tlsCfg, fingerprint, err = apiTLS(cfg.DataDir, cfg.TLSCertFile, cfg.TLSKeyFile, cfg.HTTPAddr); err != nil {
			return err
		}
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	scheme := "http"
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
		scheme = "https"
		log.Info("API TLS: clients pin this certificate with --tls-fingerprint (or trust its CA with --ca-file)",
			"fingerprint", fingerprint, "self_signed", cfg.TLSCertFile == "")
		srv.SetFingerprint(fingerprint)
		if cfg.ServingTLS != nil {
			cfg.ServingTLS(fingerprint)
		}
	}
	log.Info("core listening", "addr", ln.Addr().String(), "scheme", scheme, "data_dir", cfg.DataDir)
	if cfg.Listening != nil {
		cfg.Listening(ln.Addr())
	}

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
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
		log.Error("core node stopped: its supervision tree gave up; exiting so the process is restarted")
	}
	log.Info("shutting down: waiting for in-flight requests")
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn("in-flight requests did not finish in time", "err", err)
	}
	if err := <-served; err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	if stopped != nil {
		return stopped
	}
	log.Info("stopped")
	return nil
}

// ErrClusterStopped is RunCore's error when the core's node stopped on its
// own (its supervision tree gave up).
var ErrClusterStopped = errors.New("core node stopped: its supervision tree exceeded its restart intensity")
