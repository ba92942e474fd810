// Package api is the core's HTTP API: FunLess's REST API v1 (same paths,
// bodies, status codes and error shapes) plus ownership of modules, token
// management, function records, health, readiness and Prometheus metrics.
//
// It is an adapter: routes, decoding, authentication and the mapping of
// outcomes to statuses. It stores through package storage, invokes through
// the invocation service (package invocation) and maps failures through
// the one table of package failure. The core's assembly (package core)
// builds it.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/invocation"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// Default limits.
const (
	// DefaultMaxUploadBytes bounds a function's code (413 above it).
	DefaultMaxUploadBytes = 64 << 20
	// DefaultMaxArgsBytes bounds an invocation's body.
	DefaultMaxArgsBytes = 6 << 20
	// maxJSONBodyBytes bounds the small JSON bodies (modules, subjects).
	maxJSONBodyBytes = 64 << 10
	// maxHeaderBytes bounds a request's headers, read before anything
	// authenticates the caller (net/http's default is 1 MiB); a bearer
	// token and a client's usual headers take under 1 KiB.
	maxHeaderBytes = 64 << 10
)

// Config assembles a Server. Store is required; everything else has a
// working default.
type Config struct {
	// Store is the open database; the Server does not close it.
	Store *storage.Store
	// Logger receives request errors and panics; nil means slog.Default().
	Logger *slog.Logger
	// MaxUploadBytes bounds uploaded code; 0 means DefaultMaxUploadBytes.
	MaxUploadBytes int64
	// MaxArgsBytes bounds an invocation body; 0 means DefaultMaxArgsBytes.
	MaxArgsBytes int64
	// BodyBudget bounds the bytes of the invocation and upload bodies held
	// at once (bodies.go); 0 means DefaultBodyBudget. At least
	// MaxArgsBytes, so the largest invocation fits.
	BodyBudget int64
	// Invocations invokes functions for the API; nil builds one over
	// Store that runs calls with Invoker (the API alone, in tests).
	Invocations *invocation.Service
	// Invoker runs functions when Invocations is nil; nil answers every
	// invocation with 503 "No worker available".
	Invoker cluster.Invoker
	// Notifier hears about function changes; nil drops them.
	Notifier cluster.Notifier
	// Ready, if set, is consulted by /readyz after the storage check (the
	// cluster's "at least one worker"); nil means ready once storage is open.
	Ready func() error
	// Nodes lists and attaches workers; nil: GET /v1/nodes is empty.
	Nodes cluster.Nodes
	// Inspect validates uploaded code; nil means wasm.Inspect in this
	// process. The core uses wasm/inspectproc: a child process with a
	// bounded address space.
	Inspect func(ctx context.Context, code []byte) (wasm.ModuleInfo, error)
	// PublicMetrics serves /metrics without a token, as FunLess does. By
	// default any valid token is required.
	PublicMetrics bool
	// Triggers, if set, runs functions' events; nil stores events without
	// running them.
	Triggers Triggers
	// Writes makes the handlers' writes; nil means Store (a single core).
	// A core group's member writes through its log.
	Writes Writer
	// Group, if set, lists the core group's members (GET /v1/admin/group);
	// nil: a single core, no members.
	Group func() ([]GroupMember, error)
	// GroupRemove removes a member of the core group (DELETE
	// /v1/admin/group/:id): ErrNoGroupMember if there is none of that ID.
	GroupRemove func(id string) error
	// CatchUp, if set, returns once the core has applied every write its
	// group acknowledged; the handlers of writes whose precondition they
	// check on the local store wait for it first. Nil: a single core.
	CatchUp func(ctx context.Context) error
	// FunctionGone, if set, hears that a function's name was given up
	// (deleted, or its module renamed or deleted): its per-function metric
	// series are dropped, so the name's next owner sees none of them.
	FunctionGone func(module, function string)
	// DataDir is the core's data directory: GET /v1/admin/status reports
	// the free space of its file system. Empty: unknown.
	DataDir string
}

// Server is the core's HTTP API over one store.
type Server struct {
	cfg      Config
	log      *slog.Logger
	bodies   *bodyAdmission
	router   *httprouter.Router
	reg      *prometheus.Registry
	prom     http.Handler // every series, for admins
	promOpts promhttp.HandlerOpts
	metrics  *httpMetrics
	srv      *http.Server
	stopping chan struct{}

	fingerprint atomic.Pointer[string] // the API's HTTPS certificate, for join tokens

	refusalLog *logBucket // rate of "request refused" lines
	strangers  *logBucket // rate of refusals of requests with no valid credential answered at once (holdStranger)
	// diskFull paces each subject's 507s (a write refused on a full disk)
	// as bodies.pace paces its 429s: a tenant that uploads in a loop on a
	// full disk was refused 130 times a second and slowed a neighbour's
	// calls sixfold.
	diskFull     refusalPace
	refusalsHeld *prometheus.CounterVec // by reason: "bodies", "disk_full"
	lists        listSlots              // one list scanning at a time per subject
	table        []Route
	inv          *invocation.Service
	writes       Writer // cfg.Writes, or cfg.Store
}

// SetFingerprint records the SHA-256 of the API's HTTPS certificate; join
// tokens carry it so a worker pins the core without another flag.
func (s *Server) SetFingerprint(fp string) { s.fingerprint.Store(&fp) }

// Route is one registered endpoint, so tests (and documentation) can
// enumerate every route and no new one escapes the authentication checks.
type Route struct {
	Method string
	Path   string // httprouter pattern, e.g. /v1/fn/:mod/:fn
	Access string // "public", "user" or "admin"
}

// Routes lists every registered endpoint in registration order.
func (s *Server) Routes() []Route { return append([]Route(nil), s.table...) }

// New builds the API handler and its metrics registry.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("api: Config.Store is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxUploadBytes <= 0 {
		cfg.MaxUploadBytes = DefaultMaxUploadBytes
	}
	if cfg.MaxArgsBytes <= 0 {
		cfg.MaxArgsBytes = DefaultMaxArgsBytes
	}
	if cfg.BodyBudget <= 0 {
		cfg.BodyBudget = DefaultBodyBudget
	}
	cfg.BodyBudget = max(cfg.BodyBudget, cfg.MaxArgsBytes)
	if cfg.Writes == nil {
		cfg.Writes = cfg.Store
	}
	inv := cfg.Invocations
	if inv == nil {
		var err error
		if inv, err = invocation.New(invocation.Config{Store: cfg.Store, Invoker: cfg.Invoker, Log: cfg.Logger}); err != nil {
			return nil, err
		}
	}
	s := &Server{cfg: cfg, log: cfg.Logger, reg: prometheus.NewRegistry(), stopping: make(chan struct{}), inv: inv,
		bodies: newBodyAdmission(cfg.BodyBudget), writes: cfg.Writes}
	s.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		storeCollector{store: cfg.Store, log: cfg.Logger},
	)
	s.metrics = newHTTPMetrics(s.reg)
	s.refusalLog = newLogBucket(s.reg, refusalLogRate, refusalLogBurst)
	s.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "edgefaas_api_list_waits_total", Help: "Lists of activation records that waited for the same subject's list before them to finish its scan.",
	}, func() float64 { return float64(s.lists.waits.Load()) }))
	s.refusalsHeld = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "edgefaas", Subsystem: "http", Name: "refusals_held_total",
		Help: "A subject's refusals held for a second before their answer because another came within the second before: reason bodies (429, no room for a request body) or disk_full (507).",
	}, []string{"reason"})
	s.reg.MustRegister(s.refusalsHeld)
	s.bodies.pace.held = s.refusalsHeld.WithLabelValues("bodies")
	s.diskFull.held = s.refusalsHeld.WithLabelValues("disk_full")
	s.strangers = newNamedLogBucket(s.reg, strangerRate, strangerBurst, "unauthenticated_refusals_held_total",
		"Refusals of requests with no valid credential (401s, refused joins) held for a second because they came faster than the API answers them at once.")
	s.router = s.routes()
	s.srv = &http.Server{
		Handler:           s.router,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       2 * time.Minute,
		ConnState:         trackConnState, // idle connections give way at the connection bound
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog: serverErrorLog(cfg.Logger, newNamedLogBucket(s.reg, refusalLogRate, refusalLogBurst,
			"server_logs_suppressed_total", "net/http error log lines (TLS handshake failures, malformed requests) left out by the rate limit.")),
	}
	return s, nil
}

// Handler returns the API as an http.Handler, for embedding.
func (s *Server) Handler() http.Handler { return s.router }

// Registry returns the Prometheus registry /metrics serves, so other parts
// of the core (the cluster's invocation metrics) can register there.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Serve answers requests on ln until Shutdown; it returns nil after a clean
// shutdown.
func (s *Server) Serve(ln net.Listener) error {
	err := s.srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for in-flight requests to
// finish, or for ctx to end (then it closes the remaining connections).
func (s *Server) Shutdown(ctx context.Context) error {
	select {
	case <-s.stopping:
	default:
		close(s.stopping)
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		s.srv.Close()
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
