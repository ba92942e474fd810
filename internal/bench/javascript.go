package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/edgefaas/edgefaas/internal/jsengine"
)

// The JavaScript rows of the full run: hellojs's throughput on the single
// box beside the C hello's in the same rounds, and the paper's sleep and
// matrixMult in JavaScript on edgefaas beside Node.js (V8) serving the
// same example scripts (testdata/node-server.mjs). The quick run has
// none: these rows are measurements, not checks.

// JavaScript is the JavaScript section of a full run.
type JavaScript struct {
	// At 16 connections on the single box: hellojs's and the C hello's
	// req/s (medians of Rounds rounds, the two taking turns), and the
	// median of each round's hellojs/C ratio.
	HelloJSRPS float64 `json:"hellojs_rps_16"`
	HelloCRPS  float64 `json:"hello_c_rps_16"`
	HelloRatio float64 `json:"hellojs_to_c"`
	Rounds     int     `json:"rounds"`
	HelloErr   int     `json:"hello_errors"`
	// Node is the node version measured, or empty with NodeSkipped saying
	// why the Node.js rows are missing.
	Node        string `json:"node,omitempty"`
	NodeSkipped string `json:"node_skipped,omitempty"`
	// Sleep and Matrix are the paper's sleep (overhead above the sleep)
	// and matrixMult 100×100 in JavaScript on each edgefaas shape and on
	// Node.js, the same shapes of load for each.
	Sleep  []Summary `json:"sleep"`
	Matrix []Summary `json:"matrixmult"`
	// MatrixPer is the matrixMult requests per thread.
	MatrixPer int    `json:"matrixmult_per_thread"`
	LoadAvg   string `json:"load_avg"`
}

// tNode is the Node.js baseline's target name.
const tNode = "node"

// The JavaScript examples as the step deploys them.
const (
	jsHello  = "hellojs"
	jsSleep  = "sleepjs"
	jsMatrix = "matrixmultjs"
)

// jsExamples are the example scripts of the step, by function name.
var jsExamples = []struct{ name, file string }{
	{jsHello, filepath.Join("examples", "hellojs", "hello.js")},
	{jsSleep, filepath.Join("examples", "sleepjs", "sleep.mjs")},
	{jsMatrix, filepath.Join("examples", "matrixmultjs", "matrix.js")},
}

func (e *env) javascript(ctx context.Context) error {
	if e.o.Quick {
		e.logf("javascript    full run only")
		return nil
	}
	if err := jsengineMissing(); err != nil {
		e.r.Notes = append(e.r.Notes, "JavaScript rows: "+err.Error())
		e.logf("javascript    no rows: %v", err)
		return nil
	}
	js := &JavaScript{MatrixPer: e.o.JSMatrixPer, LoadAvg: loadAvg()}
	e.r.JavaScript = js
	for _, pl := range e.plats {
		for _, x := range jsExamples {
			src, err := os.ReadFile(filepath.Join(e.o.Root, x.file))
			if err != nil {
				return err
			}
			if err := pl.upload(ctx, x.name, jsengine.Wrap(src), nil); err != nil {
				return err
			}
		}
	}
	if sb := e.byName[tSingleBox]; sb != nil {
		e.jsHelloBesideC(ctx, js, sb)
	}

	targets := []*target{e.byName[tEdgefaas]}
	if sb := e.byName[tSingleBox]; sb != nil {
		targets = append(targets, sb)
	}
	node, err := startNode(ctx, e.o.Root)
	if err != nil {
		js.NodeSkipped = err.Error()
		e.logf("javascript    no Node.js rows: %v", err)
	} else {
		defer node.stop()
		js.Node = node.version
		targets = append(targets, node.target())
	}
	sl := time.Duration(e.o.SleepMS) * time.Millisecond
	sleep := work{jsSleep, []byte(`{"ms":` + strconv.Itoa(e.o.SleepMS) + `}`), contains(`"slept":` + strconv.Itoa(e.o.SleepMS))}
	matrix := work{jsMatrix, []byte(`{"n":100}`), contains(`"checksum"`)}
	for _, t := range targets {
		s := summarize(t.name, "sleep (JS)", runLoad(ctx, loadSpec{Threads: e.o.Threads, PerThread: e.o.SleepPer, Timeout: sl + 30*time.Second}, sleep.call(t), t.pids), sl)
		js.Sleep = append(js.Sleep, s)
		e.logf("javascript    sleep       %-11s n=%d err=%d overhead p50=%.0fµs p99=%.0fµs", t.name, s.Requests, s.Errors, s.P50, s.P99)
	}
	for _, t := range targets {
		s := summarize(t.name, "matrixmult (JS)", runLoad(ctx, loadSpec{Threads: e.o.Threads, PerThread: e.o.JSMatrixPer}, matrix.call(t), t.pids), 0)
		js.Matrix = append(js.Matrix, s)
		e.logf("javascript    matrixmult  %-11s n=%d err=%d p50=%.0fµs p99=%.0fµs cpu/req=%.0fµs", t.name, s.Requests, s.Errors, s.P50, s.P99, s.CPUPerReq)
	}
	e.r.Workloads = append(e.r.Workloads, js.Sleep...)
	e.r.Workloads = append(e.r.Workloads, js.Matrix...)
	return nil
}

// jsHelloBesideC measures hellojs and the C hello at 16 connections on t,
// taking turns (which goes first alternates), so that a shared machine's
// drifting load falls on both.
func (e *env) jsHelloBesideC(ctx context.Context, js *JavaScript, t *target) {
	args := []byte(`{"name":"edge"}`)
	fns := [2]work{{jsHello, args, contains("Hello, edge!")}, {fnName("hello-c"), args, contains("Hello, edge!")}}
	for _, w := range fns {
		runLoad(ctx, loadSpec{Threads: 16, Duration: e.o.PathWarmup}, w.call(t), nil)
	}
	var jsRuns, cRuns []Summary
	var ratios []float64
	for round := range e.o.JSRounds {
		var s [2]Summary
		for k := range 2 {
			i := (k + round) % 2
			s[i] = summarize(t.name, "hello "+fns[i].fn+" c=16", runLoad(ctx, loadSpec{Threads: 16, Duration: e.o.PathStep}, fns[i].call(t), t.pids), 0)
		}
		jsRuns, cRuns = append(jsRuns, s[0]), append(cRuns, s[1])
		ratios = append(ratios, ratio(s[0].Throughput, s[1].Throughput))
		js.HelloErr += s[0].Errors + s[1].Errors
		e.r.Workloads = append(e.r.Workloads, s[0], s[1])
	}
	rps := func(s Summary) float64 { return s.Throughput }
	js.HelloJSRPS, js.HelloCRPS, js.HelloRatio, js.Rounds = median(jsRuns, rps), median(cRuns, rps), medianF(ratios), e.o.JSRounds
	e.logf("javascript    %-11s c=16 hellojs %.0f req/s, C hello %.0f req/s: %.2f× err=%d", t.name, js.HelloJSRPS, js.HelloCRPS, js.HelloRatio, js.HelloErr)
}

// nodeServer is the Node.js baseline serving the JavaScript examples.
type nodeServer struct {
	*nativeServer
	version string
}

// startNode starts testdata/node-server.mjs of root with the examples;
// its error says why there is no Node.js baseline (no node in PATH).
func startNode(ctx context.Context, root string) (*nodeServer, error) {
	bin, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("node (Node.js) is not installed: %w", err)
	}
	v, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w", bin, err)
	}
	args := []string{filepath.Join(root, "internal", "bench", "testdata", "node-server.mjs")}
	for _, x := range jsExamples {
		args = append(args, x.name+"="+filepath.Join(root, x.file))
	}
	s, err := startServerProcess(ctx, "the Node.js baseline", exec.Command(bin, args...))
	if err != nil {
		return nil, err
	}
	return &nodeServer{s, strings.TrimSpace(string(v))}, nil
}

func (n *nodeServer) target() *target {
	pid := n.pid()
	return httpTarget(tNode, n.url, "", func() []int { return []int{pid} })
}

// jsGoals are the goals of the JavaScript rows: hellojs ≥ 0.5× the C
// hello's req/s, and edgefaas's JS sleep overhead within 1 ms of Node's.
func (js *JavaScript) goals() []pathGoal {
	var g []pathGoal
	if js.HelloRatio > 0 {
		g = append(g, pathGoal{"hellojs ÷ C hello req/s, single box, 16 conn", fmt.Sprintf("%.2f×", js.HelloRatio), "≥ 0.5×", js.HelloRatio >= 0.5})
	}
	node, ok := findSummary(js.Sleep, tNode)
	if !ok {
		return g
	}
	for _, s := range js.Sleep {
		if s.Target == tNode {
			continue
		}
		d := (s.P50 - node.P50) / 1000
		g = append(g, pathGoal{"JS sleep overhead p50, " + s.Target + " − Node", fmt.Sprintf("%+.2f ms", d), "≤ +1 ms", d <= 1})
	}
	return g
}

// findSummary returns the summary of target in ss.
func findSummary(ss []Summary, target string) (Summary, bool) {
	for _, s := range ss {
		if s.Target == target {
			return s, true
		}
	}
	return Summary{}, false
}

// markdown renders the section.
func (js *JavaScript) markdown(o Options) string {
	var b []byte
	w := func(format string, a ...any) { b = fmt.Appendf(b, format, a...) }
	w("## JavaScript — hellojs beside the C hello, sleep and matrixMult beside Node.js\n\n")
	w("The examples `examples/hellojs`, `examples/sleepjs` and `examples/matrixmultjs` (QuickJS in Wasm). ")
	w("Load average %s at the start of this step.\n\n", js.LoadAvg)
	if js.Rounds > 0 {
		w("hellojs and the C hello on the single box at 16 connections, %s per measurement after a %s warm-up each, %d rounds taking turns; medians, the ratio is the median of each round's: ", o.PathStep, o.PathWarmup, js.Rounds)
		w("hellojs **%.0f** req/s, C hello **%.0f** req/s, hellojs ÷ C **%.2f×**, %d errors.\n\n", js.HelloJSRPS, js.HelloCRPS, js.HelloRatio, js.HelloErr)
	}
	if js.NodeSkipped != "" {
		w("No Node.js rows: %s.\n\n", js.NodeSkipped)
	} else {
		w("Node.js %s serves the same scripts from a plain `node:http` server (`internal/bench/testdata/node-server.mjs`), same URL and JSON envelope, a child process.\n\n", js.Node)
	}
	node, _ := findSummary(js.Matrix, tNode)
	nodeSleep, _ := findSummary(js.Sleep, tNode)
	table := func(title string, ss []Summary, base Summary) {
		w("%s\n\n| target | requests | errors | p50 | p99 | mean | CPU/req | p50 × Node | CPU/req × Node |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n", title)
		for _, s := range ss {
			w("| %s | %d | %d | %s | %s | %s | %s | %s | %s |\n", s.Target, s.Requests, s.Errors, dur(s.P50), dur(s.P99), dur(s.Mean), dur(s.CPUPerReq),
				x(ratio(s.P50, base.P50)), x(ratio(s.CPUPerReq, base.CPUPerReq)))
		}
		w("\n")
	}
	table(fmt.Sprintf("sleepjs, %d ms, %d threads × %d sequential requests; figures are the overhead above the sleep:", o.SleepMS, o.Threads, o.SleepPer), js.Sleep, nodeSleep)
	table(fmt.Sprintf("matrixmultjs, 100×100, %d threads × %d sequential requests:", o.Threads, js.MatrixPer), js.Matrix, node)
	writeGoals(w, js.goals())
	return string(b)
}
