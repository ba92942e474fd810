package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
)

// The invocation path: the platform's fixed cost per call, measured with a
// function that does almost nothing (a FunLess-ABI echo in C, ~1 µs in the
// guest) and with the Go hello, at one connection (latency a user feels)
// and at 16 (throughput and server CPU per request), beside native Go in
// the same run. Each figure is the median of PathRounds rounds.

// PathRow is one target and function of the invocation-path table.
type PathRow struct {
	Target   string `json:"target"`
	Function string `json:"function"` // c (FunLess-ABI echo) or go (hello)
	// At one connection.
	RPS1 float64 `json:"rps_1"`
	P50  float64 `json:"p50_1_us"`
	// At 16 connections.
	RPS16     float64 `json:"rps_16"`
	CPUPerReq float64 `json:"cpu_per_req_16_us"`
	Errors    int     `json:"errors"`
}

// pathFunction is the FunLess-ABI C echo (tests/functions/echo.c), built
// by `make testmodules`.
const pathFunction = "echo_c"

func (e *env) path(ctx context.Context) error {
	echo, err := os.ReadFile(filepath.Join(e.o.WasmDir, "test", "echo.wasm"))
	if err != nil {
		return fmt.Errorf("read the C echo (run `make testmodules` first): %w", err)
	}
	for _, pl := range e.plats {
		if err := pl.upload(ctx, pathFunction, echo, &client.Metadata{}); err != nil {
			return err
		}
	}
	rows := []struct {
		target, function, fn string
		args                 []byte
	}{{tNative, "go", "hello", []byte(`{"name":"edge"}`)}}
	for _, t := range []string{tSingleBox, tEdgefaas} {
		if e.byName[t] == nil {
			continue
		}
		rows = append(rows,
			struct {
				target, function, fn string
				args                 []byte
			}{t, "c", pathFunction, []byte(`{"name":"edge"}`)},
			struct {
				target, function, fn string
				args                 []byte
			}{t, "go", "hello", []byte(`{"name":"edge"}`)})
	}
	profiled := map[string]bool{}
	for _, row := range rows {
		t := e.byName[row.target]
		fn := func(ctx context.Context) error {
			_, err := t.invoke(ctx, row.fn, row.args)
			return err
		}
		// Warm up (instances, connections, the scheduler's table).
		runLoad(ctx, loadSpec{Threads: 16, Duration: e.o.PathWarmup}, fn, nil)
		var one, many []Summary
		errs := 0
		for round := range e.o.PathRounds {
			s1 := summarize(t.name, "path c=1", runLoad(ctx, loadSpec{Threads: 1, Duration: e.o.PathStep}, fn, t.pids), 0)
			// A CPU profile of every server process during the first 16-connection
			// round of the C function on each platform (the profiler is on
			// EDGEFAAS_PPROF, which the bench gives every process it starts).
			var wg sync.WaitGroup
			if round == 0 && row.function == "c" && t.pl != nil && !profiled[t.name] {
				profiled[t.name] = true
				e.profile(&wg, t, e.o.PathStep)
			}
			s16 := summarize(t.name, "path c=16", runLoad(ctx, loadSpec{Threads: 16, Duration: e.o.PathStep}, fn, t.pids), 0)
			wg.Wait()
			one, many = append(one, s1), append(many, s16)
			errs += s1.Errors + s16.Errors
			e.r.Workloads = append(e.r.Workloads, s1, s16)
		}
		r := PathRow{Target: row.target, Function: row.function, Errors: errs,
			RPS1:      median(one, func(s Summary) float64 { return s.Throughput }),
			P50:       median(one, func(s Summary) float64 { return s.P50 }),
			RPS16:     median(many, func(s Summary) float64 { return s.Throughput }),
			CPUPerReq: median(many, func(s Summary) float64 { return s.CPUPerReq }),
		}
		e.logf("path          %-11s %-2s c=1 %.0f req/s p50=%.0fµs  c=16 %.0f req/s cpu/req=%.1fµs err=%d",
			r.Target, r.Function, r.RPS1, r.P50, r.RPS16, r.CPUPerReq, r.Errors)
		e.r.Path = append(e.r.Path, r)
	}
	return nil
}

// profile fetches a CPU profile of each of t's processes for d, into
// OutDir/profiles/, with a `go tool pprof -top` summary beside it when the
// go command is there.
func (e *env) profile(wg *sync.WaitGroup, t *target, d time.Duration) {
	dir := filepath.Join(e.o.OutDir, "profiles")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		e.r.Notes = append(e.r.Notes, "profiles: "+err.Error())
		return
	}
	names := procNames(t)
	procs := append([]*proc{t.pl.core}, t.pl.workers...)
	secs := max(1, int(d/time.Second))
	for i, p := range procs {
		if p.pprof == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			base := fmt.Sprintf("%s-%s-c-echo", t.name, names[i])
			out := filepath.Join(dir, base+".pprof")
			if err := fetchProfile(p.pprof, secs, out); err != nil {
				e.r.Notes = append(e.r.Notes, fmt.Sprintf("profile %s: %v", base, err))
				return
			}
			e.r.Profiles = append(e.r.Profiles, "profiles/"+base+".pprof")
			if gobin, err := exec.LookPath("go"); err == nil {
				if top, err := exec.Command(gobin, "tool", "pprof", "-top", "-nodecount=25", out).Output(); err == nil {
					os.WriteFile(filepath.Join(dir, base+".top.txt"), top, 0o644)
				}
			}
		}()
	}
}

func fetchProfile(addr string, secs int, out string) error {
	c := &http.Client{Timeout: time.Duration(secs+30) * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func median(ss []Summary, f func(Summary) float64) float64 {
	if len(ss) == 0 {
		return 0
	}
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// pathGoal is one line of the invocation path's goal table (docs/RATIONALE.md#the-one-step-answer-path), computed from the rows.
type pathGoal struct {
	figure, value, goal string
	met                 bool
}

func (r *Results) pathGoals() []pathGoal {
	find := func(t, f string) (PathRow, bool) {
		for _, p := range r.Path {
			if p.Target == t && p.Function == f {
				return p, true
			}
		}
		return PathRow{}, false
	}
	nat, ok := find(tNative, "go")
	if !ok || nat.RPS16 == 0 || nat.P50 == 0 {
		return nil
	}
	var g []pathGoal
	if sb, ok := find(tSingleBox, "c"); ok {
		g = append(g,
			pathGoal{"single box, C, 16 conn", fmt.Sprintf("%.2f× native", sb.RPS16/nat.RPS16), "≥ 0.75×", sb.RPS16/nat.RPS16 >= 0.75},
			pathGoal{"single box, 1 conn p50", fmt.Sprintf("%.2f× native", sb.P50/nat.P50), "≤ 1.3×", sb.P50/nat.P50 <= 1.3},
			pathGoal{"server CPU per C call, single box", fmt.Sprintf("%.1f µs", sb.CPUPerReq), "≤ 22 µs", sb.CPUPerReq <= 22})
	}
	if cw, ok := find(tEdgefaas, "c"); ok {
		g = append(g,
			pathGoal{"core + worker, C, 16 conn", fmt.Sprintf("%.2f× native", cw.RPS16/nat.RPS16), "≥ 0.45×", cw.RPS16/nat.RPS16 >= 0.45},
			pathGoal{"core + worker, 1 conn p50", fmt.Sprintf("%.2f× native", cw.P50/nat.P50), "≤ 2.5×", cw.P50/nat.P50 <= 2.5},
			pathGoal{"server CPU per C call, core + worker", fmt.Sprintf("%.1f µs", cw.CPUPerReq), "≤ 40 µs", cw.CPUPerReq <= 40})
	}
	if sg, ok := find(tSingleBox, "go"); ok {
		g = append(g, pathGoal{"Go guest, single box, 16 conn", fmt.Sprintf("%.2f× native", sg.RPS16/nat.RPS16), "≥ 0.5×", sg.RPS16/nat.RPS16 >= 0.5})
	}
	return g
}

// writePath renders the invocation-path section of the report.
func writePath(w func(string, ...any), r *Results) {
	if len(r.Path) == 0 {
		return
	}
	o := r.opts
	w("## Invocation path — the platform's fixed cost per call\n\n")
	w("C = a FunLess-ABI echo in C (~1 µs in the guest), Go = the Go hello; native = plain Go net/http hello. ")
	w("Closed-loop keep-alive clients on the same machine, %s per measurement after a %s warm-up, medians of %d rounds; ", o.PathStep, o.PathWarmup, o.PathRounds)
	w("CPU = user+system of the server processes per request at 16 connections.\n\n")
	w("| target | function | 1 conn req/s | 1 conn p50 µs | 16 conn req/s | × native at 16 | CPU per request µs | errors |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	var nat float64
	for _, p := range r.Path {
		if p.Target == tNative {
			nat = p.RPS16
		}
	}
	for _, p := range r.Path {
		w("| %s | %s | %.0f | %.0f | %.0f | %.2f | %.1f | %d |\n", p.Target, p.Function, p.RPS1, p.P50, p.RPS16, ratio(p.RPS16, nat), p.CPUPerReq, p.Errors)
	}
	if g := r.pathGoals(); len(g) > 0 {
		w("\n")
		writeGoals(w, g)
	}
	if len(r.Profiles) > 0 {
		w("\nCPU profiles of the server processes during the first 16-connection C round (`go tool pprof -top FILE`; a `.top.txt` summary is beside each): ")
		for i, p := range r.Profiles {
			if i > 0 {
				w(", ")
			}
			w("[%s](%s)", filepath.Base(p), p)
		}
		w(".\n")
	}
	w("\n")
}

// writeGoals renders a goal table, followed by an empty line.
func writeGoals(w func(string, ...any), g []pathGoal) {
	if len(g) == 0 {
		return
	}
	w("| goal (docs/RATIONALE.md) | this run | goal | met |\n| --- | ---: | ---: | --- |\n")
	for _, x := range g {
		met := "no"
		if x.met {
			met = "yes"
		}
		w("| %s | %s | %s | %s |\n", x.figure, x.value, x.goal, met)
	}
	w("\n")
}
