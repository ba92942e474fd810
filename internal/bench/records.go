package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
)

// The cost of activation records (docs/RATIONALE.md#why-batched-activation-records): the C hello at 16
// connections on two fresh deployments of the same shape started for this
// step, one with records of every call (the default) and one with
// `--activation-records=async` (synchronous calls keep none). Rounds
// alternate which one runs first, so drifting load on a shared machine
// falls on both; each figure is the median of RecordsRounds rounds.

// RecordsRow is one shape of the records table.
type RecordsRow struct {
	Target string `json:"target"` // single-box or edgefaas (core + worker)
	// Requests per second at 16 connections and the servers' CPU per
	// request, with synchronous records off and on.
	RPSOff float64 `json:"rps_off"`
	RPSOn  float64 `json:"rps_on"`
	CPUOff float64 `json:"cpu_per_req_off_us"`
	CPUOn  float64 `json:"cpu_per_req_on_us"`
	// Ratios are the medians of each round's on/off (same round, next to
	// each other in time).
	Ratio    float64 `json:"ratio_on_off"`
	CPURatio float64 `json:"cpu_ratio_on_off"`
	// RecordsOn and RecordsOff are the hello records each deployment kept
	// (the off one must keep none).
	RecordsOn  int    `json:"records_on"`
	RecordsOff int    `json:"records_off"`
	Errors     int    `json:"errors"`
	LoadAvg    string `json:"load_avg"`
	// ProfileShare is the share of the records-on core's CPU profile (the
	// first round) spent on records: the Recorder's goroutine, Record, ids,
	// and pebble's flushes and compactions (records are nearly all the
	// writes there). Less sensitive to a loaded machine than the ratio.
	ProfileShare float64 `json:"profile_share"`
}

// recordsFunction is the C hello (examples/hello-c).
const recordsFunction = "hello_c"

func (e *env) records(ctx context.Context) error {
	code, ok := e.code["hello-c"]
	if !ok {
		return errors.New("records: the C hello was not read")
	}
	shapes := []struct {
		target  string
		workers int
		on, off string // core hosts
	}{{tSingleBox, 0, "127.0.0.202", "127.0.0.203"}, {tEdgefaas, 1, "127.0.0.204", "127.0.0.205"}}
	for _, sh := range shapes {
		if sh.target == tSingleBox && e.o.NoSingleBox {
			continue
		}
		// The quick run measures one shape: the other runs the same code.
		if e.o.Quick && len(e.r.Records) > 0 {
			break
		}
		row, err := e.recordsShape(ctx, sh.target, sh.workers, sh.on, sh.off, code)
		if err != nil {
			return err
		}
		e.logf("records       %-11s off %.0f req/s cpu/req=%.1fµs  on %.0f req/s cpu/req=%.1fµs  on/off %.3f (cpu %.3f) profile share %.1f%% records on=%d off=%d err=%d load %s",
			row.Target, row.RPSOff, row.CPUOff, row.RPSOn, row.CPUOn, row.Ratio, row.CPURatio, 100*row.ProfileShare, row.RecordsOn, row.RecordsOff, row.Errors, row.LoadAvg)
		e.r.Records = append(e.r.Records, row)
	}
	return nil
}

func (e *env) recordsShape(ctx context.Context, name string, workers int, hostOn, hostOff string, code []byte) (RecordsRow, error) {
	row := RecordsRow{Target: name, LoadAvg: loadAvg()}
	var pls [2]*platform // on, off
	var errs [2]error
	var wg sync.WaitGroup
	for i, sh := range []struct {
		host string
		args []string
	}{{hostOn, nil}, {hostOff, []string{"--activation-records=async"}}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dir := filepath.Join(e.dataDir, fmt.Sprintf("records-%s-%d", name, i))
			pls[i], errs[i] = startPlatformWith(ctx, nil, name, e.o.Binary, dir, sh.host, workers, sh.args...)
		}()
	}
	wg.Wait()
	defer func() {
		for _, pl := range pls {
			if pl != nil {
				pl.stop()
			}
		}
	}()
	if err := errors.Join(errs[:]...); err != nil {
		return row, err
	}
	var ts [2]*target
	for i, pl := range pls {
		if err := pl.upload(ctx, recordsFunction, code, &client.Metadata{}); err != nil {
			return row, err
		}
		ts[i] = httpTarget(pl.name, pl.url, pl.guest, pl.pids)
	}
	args := []byte(`{"name":"edge"}`)
	call := func(t *target) func(context.Context) error {
		return func(ctx context.Context) error {
			_, err := t.invoke(ctx, recordsFunction, args)
			return err
		}
	}
	for _, t := range ts {
		runLoad(ctx, loadSpec{Threads: 16, Duration: e.o.PathWarmup}, call(t), nil)
	}
	var on, off []Summary
	var ratios, cpuRatios []float64
	for round := range e.o.RecordsRounds {
		var s [2]Summary
		order := []int{0, 1}
		if round%2 == 1 {
			order = []int{1, 0}
		}
		for _, i := range order {
			var pw sync.WaitGroup
			if round == 0 {
				e.recordsProfile(&pw, pls[i], fmt.Sprintf("records-%s-%s", name, []string{"on", "off"}[i]), func(share float64) {
					if i == 0 {
						row.ProfileShare = share
					}
				})
			}
			s[i] = summarize(name, "records "+[]string{"on", "off"}[i], runLoad(ctx, loadSpec{Threads: 16, Duration: e.o.PathStep}, call(ts[i]), ts[i].pids), 0)
			pw.Wait()
		}
		on, off = append(on, s[0]), append(off, s[1])
		row.Errors += s[0].Errors + s[1].Errors
		ratios = append(ratios, ratio(s[0].Throughput, s[1].Throughput))
		cpuRatios = append(cpuRatios, ratio(s[0].CPUPerReq, s[1].CPUPerReq))
		e.r.Workloads = append(e.r.Workloads, s[0], s[1])
	}
	rps := func(s Summary) float64 { return s.Throughput }
	cpu := func(s Summary) float64 { return s.CPUPerReq }
	row.RPSOn, row.RPSOff = median(on, rps), median(off, rps)
	row.CPUOn, row.CPUOff = median(on, cpu), median(off, cpu)
	row.Ratio, row.CPURatio = medianF(ratios), medianF(cpuRatios)
	for i, pl := range pls {
		c, cancel := context.WithTimeout(ctx, 30e9)
		list, err := pl.user.ListActivations(c, client.ActivationFilter{Function: recordsFunction, Limit: 1000})
		cancel()
		if err != nil {
			return row, fmt.Errorf("%s: list records: %w", name, err)
		}
		if i == 0 {
			row.RecordsOn = len(list)
		} else {
			row.RecordsOff = len(list)
		}
	}
	return row, nil
}

// recordsProfile fetches a CPU profile of pl's core for a measurement,
// and its allocation profile after it, into OutDir/profiles/.
func (e *env) recordsProfile(wg *sync.WaitGroup, pl *platform, base string, share func(float64)) {
	dir := filepath.Join(e.o.OutDir, "profiles")
	if pl.core.pprof == "" || os.MkdirAll(dir, 0o755) != nil {
		return
	}
	secs := max(1, int(e.o.PathStep/time.Second))
	wg.Add(1)
	go func() {
		defer wg.Done()
		out := filepath.Join(dir, base+".pprof")
		if err := fetchProfile(pl.core.pprof, secs, out); err != nil {
			e.r.Notes = append(e.r.Notes, fmt.Sprintf("profile %s: %v", base, err))
			return
		}
		e.r.Profiles = append(e.r.Profiles, "profiles/"+base+".pprof")
		if v, ok := recordsShare(out); ok {
			share(v)
		}
	}()
}

// recordRoots are the profile's functions that only records run (their
// cumulative shares do not overlap: each is its own goroutine's root, or
// called from the handler apart from the others).
var recordRoots = []string{
	"activations.(*Recorder).loop", "activations.(*Recorder).Record", "activations.(*IDs).New",
	"pebble/v2.(*DB).flush", "pebble/v2.(*DB).compact",
}

// recordsShare sums the cumulative share of recordRoots in a CPU profile,
// with `go tool pprof` (false if the go command is not there).
func recordsShare(profile string) (float64, bool) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return 0, false
	}
	out, err := exec.Command(gobin, "tool", "pprof", "-top", "-cum", "-nodecount=100000", profile).Output()
	if err != nil {
		return 0, false
	}
	var sum float64
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		name := strings.Join(f[5:], " ")
		for _, r := range recordRoots {
			if strings.HasSuffix(name, r) {
				if v, err := strconv.ParseFloat(strings.TrimSuffix(f[4], "%"), 64); err == nil {
					sum += v
				}
			}
		}
	}
	return sum / 100, true
}

func medianF(v []float64) float64 {
	ss := make([]Summary, len(v))
	for i, x := range v {
		ss[i].Throughput = x
	}
	return median(ss, func(s Summary) float64 { return s.Throughput })
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	fs := strings.Fields(string(b))
	if len(fs) < 3 {
		return "?"
	}
	return strings.Join(fs[:3], " ")
}

// writeRecords renders the records section of the report.
func writeRecords(w func(string, ...any), r *Results) {
	if len(r.Records) == 0 {
		return
	}
	o := r.opts
	w("## Activation records — their cost on the hot path\n\n")
	w("The C hello at 16 connections on two fresh deployments per shape: records of every call (the default) and `--activation-records=async` (synchronous calls keep none). ")
	w("Rounds alternate which runs first; %s per measurement after a %s warm-up, medians of %d rounds; on/off is the median of each round's ratio. ", o.PathStep, o.PathWarmup, o.RecordsRounds)
	w("CPU = user+system of the server processes per request. Records kept = the hello's records each deployment lists (up to 1000). ")
	w("Profile share = the share of the records-on core's CPU profile (first round) in the record writer, `Record` (with the per-function metrics, which also run with records off), ids and pebble's flushes and compactions: on a loaded machine a steadier figure than the ratio.\n\n")
	w("| target | records off req/s | records on req/s | on/off | CPU/req off µs | CPU/req on µs | CPU on/off | profile share | records kept on / off | errors | load avg |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, x := range r.Records {
		w("| %s | %.0f | %.0f | %.3f | %.1f | %.1f | %.3f | %.1f%% | %d / %d | %d | %s |\n", x.Target, x.RPSOff, x.RPSOn, x.Ratio, x.CPUOff, x.CPUOn, x.CPURatio, 100*x.ProfileShare, x.RecordsOn, x.RecordsOff, x.Errors, x.LoadAvg)
	}
	w("\n")
}
