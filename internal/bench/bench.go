package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/jsengine"
	"github.com/edgefaas/edgefaas/internal/testing/attacks"
	"github.com/edgefaas/edgefaas/internal/testing/workloadtargets"
)

// Results is everything a run measured (results.json; report.md renders it).
type Results struct {
	Machine     Machine          `json:"machine"`
	Quick       bool             `json:"quick"`
	Workers     int              `json:"workers"`
	Targets     []string         `json:"targets"`
	Workloads   []Summary        `json:"workloads"`
	Throughput  []ThroughputRun  `json:"throughput"`
	Memory      []MemorySeries   `json:"memory"`
	StartRSS    []MemorySeries   `json:"rss_after_setup"` // IdleMiB only`
	ColdStarts  []ColdStart      `json:"cold_starts"`
	Sustained   []SustainedSlice `json:"sustained"`
	Path        []PathRow        `json:"invocation_path"`
	Records     []RecordsRow     `json:"activation_records"`
	Profiles    []string         `json:"profiles"`
	Artifacts   []Artifact       `json:"artifacts"`
	Notes       []string         `json:"notes"`
	JavaScript  *JavaScript      `json:"javascript,omitempty"`
	EdgeBudget  *EdgeBudget      `json:"edge_budget,omitempty"`
	Attacks     *Attacks         `json:"attacks,omitempty"`
	Replicated  *ReplicatedCore  `json:"replicated_core,omitempty"`
	Duration    time.Duration    `json:"duration_ns"`
	TotalErrors int              `json:"total_errors"`
	Requests    int              `json:"total_requests"`

	opts Options
}

// ThroughputRun is one target's concurrency sweep.
type ThroughputRun struct {
	Target string    `json:"target"`
	Steps  []Summary `json:"steps"`
	// Peak is the highest throughput of a step whose p99 stayed within
	// the bound; PeakAt its concurrency.
	Peak       float64 `json:"peak_rps"`
	PeakAt     int     `json:"peak_concurrency"`
	PeakCPU    float64 `json:"peak_cpu_per_req_us"`
	PeakP99    float64 `json:"peak_p99_us"`
	StoppedWhy string  `json:"stopped"`
}

// MemorySeries is RSS sampled once a second during the hello memory run.
type MemorySeries struct {
	Target  string    `json:"target"`
	Process string    `json:"process"` // core, worker1, single-box, native
	Seconds []float64 `json:"seconds"`
	RSSMiB  []float64 `json:"rss_mib"`
	IdleMiB float64   `json:"idle_mib"`
}

// sample appends pid's resident set at elapsed to the series.
func (s *MemorySeries) sample(elapsed time.Duration, pid int) {
	s.Seconds = append(s.Seconds, elapsed.Seconds())
	s.RSSMiB = append(s.RSSMiB, mib(procRSS(pid)))
}

// sampleEverySecond calls sample at once and then every second, with the
// time since the first call, until the returned stop (which waits for the
// sampler to end): the memory runs' RSS series.
func sampleEverySecond(sample func(elapsed time.Duration)) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		tk := time.NewTicker(time.Second)
		defer tk.Stop()
		for {
			sample(time.Since(start))
			select {
			case <-done:
				return
			case <-tk.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// ColdStart is one cold-start measurement.
type ColdStart struct {
	Target   string  `json:"target"`
	Function string  `json:"function"` // go (hello.wasm), c (hello-c.wasm)
	Case     string  `json:"case"`     // upload, worker-restart, compile (in-process)
	PrepMS   float64 `json:"prep_ms"`  // upload (incl. compile on workers), restart until listed, or compile
	FirstMS  float64 `json:"first_invoke_ms"`
	TotalMS  float64 `json:"total_ms"`
	WarmMS   float64 `json:"warm_invoke_ms"` // the next invoke, for contrast
	Err      string  `json:"error,omitempty"`
}

// SustainedSlice is one slice of the sustained run.
type SustainedSlice struct {
	Target    string  `json:"target"`
	Index     int     `json:"index"`
	EndS      float64 `json:"end_s"`
	Summary   Summary `json:"summary"`
	CoreMiB   float64 `json:"core_rss_mib"`
	WorkerMiB float64 `json:"worker_rss_mib"`
}

// Artifact is an example function's size.
type Artifact struct {
	Name       string `json:"name"`
	Bytes      int64  `json:"bytes"`
	GzipBytes  int64  `json:"gzip_bytes"`
	ABI        string `json:"abi"`
	Language   string `json:"language"`
	DeployedAs string `json:"-"`
}

// env is a run's live state.
type env struct {
	o       Options
	r       *Results
	targets []*target
	byName  map[string]*target
	code    map[string][]byte
	echo    *workloadtargets.Echo
	fetch   *workloadtargets.Fetch
	native  *nativeServer
	inproc  *inProc
	plats   []*platform
	dataDir string
}

func (e *env) logf(format string, a ...any) {
	fmt.Fprintf(e.o.Log, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}

// Run runs the suite and writes the report into o.OutDir. It returns the
// results even when some requests failed (they are counted and reported);
// an error means the suite itself could not run.
func Run(ctx context.Context, o Options) (*Results, error) {
	o = o.withDefaults()
	if o.Binary == "" || o.WasmDir == "" || o.OutDir == "" {
		return nil, errors.New("bench: Binary, WasmDir and OutDir are required")
	}
	start := time.Now()
	r := &Results{Machine: describeMachine(o.Root, o.Binary), Quick: o.Quick, Workers: o.Workers, opts: o}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, err
	}
	dataDir, err := os.MkdirTemp("", "edgefaas-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dataDir)
	e := &env{o: o, r: r, byName: map[string]*target{}, code: map[string][]byte{}, dataDir: dataDir}
	defer e.close()

	if err := e.setup(ctx); err != nil {
		return nil, err
	}
	for _, t := range e.targets {
		r.Targets = append(r.Targets, t.name)
	}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"artifacts", e.artifacts},
		{"sleep", e.sleep},
		{"server-reply", e.serverReply},
		{"matrixmult", e.matrix},
		{"network", e.network},
		{"invocation path", e.path},
		{"records", e.records},
		{"throughput", e.throughput},
		{"memory", e.memory},
		{"cold start", e.coldStart},
		{"sustained", e.sustained},
		{"javascript", e.javascript}, // last on these platforms: its warm JS instances would count in the memory runs
		{"edge budget", e.edgeBudget},
		{"attacks", e.attacks},
		{"replicated core", e.replicatedCore},
	}
	// Steps --quick leaves out unless --only names them: TestQuick (make
	// test) runs --quick, and a core group takes a minute to measure.
	notQuick := []string{"replicated core"}
	for _, s := range steps {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if len(o.Only) > 0 && !slices.Contains(o.Only, s.name) || len(o.Only) == 0 && o.Quick && slices.Contains(notQuick, s.name) {
			continue
		}
		e.logf("== %s", s.name)
		if err := s.fn(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	r.Duration = time.Since(start)
	for _, s := range r.allSummaries() {
		r.TotalErrors += s.Errors
		r.Requests += s.Requests
	}
	for _, c := range r.ColdStarts {
		r.Requests++
		if c.Err != "" {
			r.TotalErrors++
		}
	}
	if err := writeReport(r, o.OutDir); err != nil {
		return r, err
	}
	e.logf("report written to %s (%d requests, %d errors, %s)", o.OutDir, r.Requests, r.TotalErrors, r.Duration.Round(time.Second))
	return r, nil
}

// allSummaries lists every load summary of the run.
func (r *Results) allSummaries() []Summary {
	out := append([]Summary(nil), r.Workloads...)
	for _, t := range r.Throughput {
		out = append(out, t.Steps...)
	}
	for _, s := range r.Sustained {
		out = append(out, s.Summary)
	}
	return out
}

// fnName is an example's function name on the platform (names allow only
// letters, digits and _).
func fnName(example string) string { return strings.ReplaceAll(example, "-", "_") }

// functions are the examples the workloads use.
var functions = []string{"hello", "sleep", "matrixmult", "server-reply", "network", "hello-c"}

func (e *env) setup(ctx context.Context) error {
	for _, f := range functions {
		b, err := os.ReadFile(filepath.Join(e.o.WasmDir, f+".wasm"))
		if err != nil {
			return fmt.Errorf("read example (run `make examples` first): %w", err)
		}
		e.code[f] = b
	}
	// hellojs, where this build has the JavaScript engine: its cold start
	// beside the Go and C hellos'.
	if js, err := os.ReadFile(filepath.Join(e.o.Root, "examples", "hellojs", "hello.js")); err == nil && jsengine.Available() {
		e.code["hellojs"] = jsengine.Wrap(js)
	} else {
		e.logf("no JavaScript rows: %v", errors.Join(err, jsengineMissing()))
	}
	var err error
	if e.echo, err = workloadtargets.StartEcho(); err != nil {
		return err
	}
	if e.fetch, err = workloadtargets.StartFetch(); err != nil {
		return err
	}
	// Start the platforms and the native server at once, then upload to
	// both platforms and compile in process at once (compiling Go modules
	// is most of the setup time).
	e.logf("starting edgefaas (core + %d worker(s)), single box (core --with-worker), native baseline", e.o.Workers)
	shapes := []struct {
		name, host string
		workers    int
	}{{tEdgefaas, "127.0.0.1", e.o.Workers}}
	if !e.o.NoSingleBox {
		shapes = append(shapes, struct {
			name, host string
			workers    int
		}{tSingleBox, "127.0.0.200", 0})
	}
	plats := make([]*platform, len(shapes))
	errs := make([]error, len(shapes)+1)
	var wg sync.WaitGroup
	for i, sh := range shapes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			plats[i], errs[i] = startPlatform(ctx, sh.name, e.o.Binary, filepath.Join(e.dataDir, sh.name), sh.host, sh.workers)
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.native, errs[len(shapes)] = startNative(ctx)
	}()
	wg.Wait()
	for _, pl := range plats {
		if pl != nil {
			e.plats = append(e.plats, pl)
			e.addPlatform(pl)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	npid := e.native.pid()
	e.add(httpTarget(tNative, e.native.url, "", func() []int { return []int{npid} }))
	if e.inproc, err = newInProc(ctx); err != nil {
		return err
	}
	e.add(e.inproc.target())
	e.logf("uploading %d functions to each platform and compiling them in process", len(functions))
	errs = make([]error, len(e.plats)+1)
	for i, pl := range e.plats {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, f := range functions {
				if err := pl.upload(ctx, fnName(f), e.code[f], &client.Metadata{AllowedHosts: e.allowed(f)}); err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for _, f := range functions {
			if err := e.inproc.add(ctx, fnName(f), e.code[f], e.allowed(f)); err != nil {
				errs[len(e.plats)] = err
				return
			}
		}
	}()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// Check every function on every target once (and warm them).
	for _, t := range e.targets {
		for _, w := range e.checks() {
			c, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := w.call(t)(c)
			cancel()
			if err != nil {
				return fmt.Errorf("%s on %s does not work: %w", w.fn, t.name, err)
			}
		}
	}
	// RSS of every server process once started and checked, before any load.
	for _, t := range e.targets {
		if t.name == tInProc {
			continue
		}
		names := procNames(t)
		for i, p := range t.pids() {
			e.r.StartRSS = append(e.r.StartRSS, MemorySeries{Target: t.name, Process: names[i], IdleMiB: mib(procRSS(p))})
		}
	}
	return nil
}

func (e *env) addPlatform(pl *platform) {
	e.add(httpTarget(pl.name, pl.url, pl.guest, pl.pids))
	e.byName[pl.name].pl = pl
}

func (e *env) add(t *target) {
	e.targets = append(e.targets, t)
	e.byName[t.name] = t
}

// allowed is the function's outbound allow-list: only the servers it needs.
func (e *env) allowed(f string) []string {
	switch f {
	case "server-reply":
		return []string{e.echo.Addr()}
	case "network":
		return []string{e.fetch.Addr()}
	}
	return nil
}

// work is one function call with its arguments and a check of its answer.
type work struct {
	fn    string
	args  []byte
	check func(out []byte) error
}

func contains(s string) func([]byte) error {
	return func(out []byte) error {
		if !bytes.Contains(out, []byte(s)) {
			return fmt.Errorf("answer %.200q lacks %q", out, s)
		}
		return nil
	}
}

func (w work) call(t *target) call {
	return func(ctx context.Context) error {
		out, err := t.invoke(ctx, w.fn, w.args)
		if err != nil {
			return err
		}
		return w.check(out)
	}
}

func (e *env) helloWork() work {
	return work{"hello", []byte(`{"name":"edge"}`), contains("Hello, edge!")}
}

func (e *env) sleepWork(ms int) work {
	return work{"sleep", []byte(`{"ms":` + strconv.Itoa(ms) + `}`), contains("Slept for")}
}

func (e *env) replyWork() work {
	return work{"server_reply", []byte(`{"address":"` + e.echo.Addr() + `","message":"bench-ping"}`), contains(`bench-ping`)}
}

func (e *env) matrixWork() work {
	return work{"matrixmult", []byte(`{"n":100}`), contains(`"checksum"`)}
}

func (e *env) networkWork() work {
	return work{"network", []byte(`{"url":"` + e.fetch.URL() + `","count":16}`), func(out []byte) error {
		if n := bytes.Count(out, []byte(`"status":200`)); n != 16 {
			return fmt.Errorf("network: %d of 16 requests answered 200: %.200q", n, out)
		}
		return nil
	}}
}

func (e *env) checks() []work {
	return []work{e.helloWork(), e.sleepWork(1), e.replyWork(), e.matrixWork(), e.networkWork()}
}

// mark makes code distinct (a new hash) without changing what it does:
// it appends a custom section with random bytes.
func mark(code []byte) []byte {
	if _, ok := jsengine.Source(code); ok { // a script: a comment changes its hash
		payload := make([]byte, 16)
		rand.Read(payload)
		return append(append([]byte(nil), code...), fmt.Sprintf("\n// edgefaas-bench %x\n", payload)...)
	}
	return attacks.Padded(code, 16)
}

func (e *env) close() {
	for _, pl := range e.plats {
		pl.stop()
	}
	if e.native != nil {
		e.native.stop()
	}
	if e.inproc != nil {
		e.inproc.engine.Close(context.Background())
	}
	if e.echo != nil {
		e.echo.Close()
	}
	if e.fetch != nil {
		e.fetch.Close()
	}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// jsengineMissing is why this build has no JavaScript engine, or nil.
func jsengineMissing() error {
	if jsengine.Available() {
		return nil
	}
	return jsengine.ErrUnavailable
}
