package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// The "replicated core" section: what a core group of three costs against
// a single core, and what it buys. Both are started fresh, each with one
// worker process, and measured in the same run, rounds alternating their
// order: an upload of the C hello (new code each time, so the whole code
// goes through the log), asynchronous enqueues, and the invocation path
// (the C hello at 16 connections); a memory run (the C hello at 4
// connections) through the single core and through the group's leader,
// each core's peak RSS; then the group's leader is killed with SIGKILL
// while synchronous calls stream through the two others.

// ReplicatedCore is the section's figures.
type ReplicatedCore struct {
	// Election is Raft's timing the cores run with.
	Election string `json:"election"`
	// LoadAvg is the machine's load average when the section started.
	LoadAvg string `json:"load_avg"`
	// Rounds, Step and Uploads are the sizes: rounds of each measurement
	// (medians reported), each enqueue and invocation run, and uploads per
	// round.
	Rounds  int           `json:"rounds"`
	Step    time.Duration `json:"step_ns"`
	Uploads int           `json:"uploads_per_round"`
	Rows    []GroupRow    `json:"rows"`
	// Memory is the cores' peak memory in a memory run.
	Memory GroupMemory `json:"memory"`
	// Failover is kill -9 of the group's leader.
	Failover Failover `json:"failover"`
}

// GroupMemory is the paper's memory run's shape (hello at 4
// connections) through the single core and through the group's leader:
// each core process's peak RSS (VmHWM, reset before the run).
type GroupMemory struct {
	Duration time.Duration `json:"duration_ns"`
	// SingleMiB is the single core's peak; MembersMiB each group member's,
	// the leader first.
	SingleMiB  float64   `json:"single_core_peak_mib"`
	MembersMiB []float64 `json:"group_members_peak_mib"`
	// SingleRPS and GroupRPS are the runs' throughput.
	SingleRPS float64 `json:"single_core_rps"`
	GroupRPS  float64 `json:"group_rps"`
}

// GroupRow is one core taking the load: the single core, or the group's
// leader or a follower (whose writes it forwards to the leader).
type GroupRow struct {
	Target string `json:"target"`
	// UploadP50 is the median upload's time, µs, over every round's.
	UploadP50 float64 `json:"upload_p50_us"`
	// EnqueueRPS is asynchronous calls acknowledged (202) per second at
	// enqueueConns connections.
	EnqueueRPS float64 `json:"enqueue_rps"`
	// InvokeRPS and InvokeCPU are the C hello at 16 connections: req/s
	// and the server processes' CPU per request, µs (every process of
	// the shape: the group's three cores and worker).
	InvokeRPS float64 `json:"invoke_16_rps"`
	InvokeCPU float64 `json:"invoke_16_cpu_per_req_us"`
	Errors    int     `json:"errors"`
}

// Failover is kill -9 of the group's leader while synchronous calls
// stream through the two other members.
type Failover struct {
	Killed    string `json:"killed"`
	NewLeader string `json:"new_leader"`
	// FirstWrite is kill → the first write acknowledged by a survivor (0:
	// none within failoverLimit).
	FirstWrite time.Duration `json:"first_write_ns"`
	// Refused counts the writes the survivors refused or failed before it.
	Refused int `json:"writes_refused"`
	// Calls and CallErrors count the synchronous calls through the
	// survivors from 1 s before the kill for failoverWindow.
	Calls      int    `json:"calls"`
	CallErrors int    `json:"call_errors"`
	FirstError string `json:"first_error,omitempty"`
	Err        string `json:"error,omitempty"`
}

const (
	// groupFunction is the C hello every row invokes.
	groupFunction = "hello_c"
	// enqueueConns are the enqueue runs' connections.
	enqueueConns = 8
	// uploadsPerRound are each round's uploads per row.
	uploadsPerRound = 10
	// failoverWindow is how long the calls through the survivors run: 1 s
	// before the kill, then past the first write's goal (3 s) and more.
	failoverWindow = 8 * time.Second
	// failoverLimit bounds the wait for the first write after the kill.
	failoverLimit = 30 * time.Second
	// memoryConns and memoryRun are the memory run's connections (the
	// paper's 4) and length.
	memoryConns = 4
	memoryRun   = 15 * time.Second
)

// groupRow is a core the rows load, with the processes that count.
type groupRow struct {
	name   string
	pl     *platform   // the core taken (its clients)
	queues []*platform // the cores whose queue must drain between runs
	invoke *target
	async  *client.Client
}

// RunReplicatedCore runs only the replicated-core section and writes
// replicated-core.md and replicated-core.json into o.OutDir.
func RunReplicatedCore(ctx context.Context, o Options) (*ReplicatedCore, error) {
	e, done, err := sectionEnv(o, "edgefaas-bench-group-")
	if err != nil {
		return nil, err
	}
	defer done()
	o = e.o
	if e.code["hello-c"], err = os.ReadFile(filepath.Join(o.WasmDir, "hello-c.wasm")); err != nil {
		return nil, fmt.Errorf("read example (run `make examples` first): %w", err)
	}
	if err := e.replicatedCore(ctx); err != nil {
		return nil, err
	}
	rc := e.r.Replicated
	m := e.r.Machine
	md := fmt.Sprintf("# edgefaas replicated core\n\nMachine: %s, %d cores, %s, Linux %s, %s; commit `%.12s`.\n\n%s",
		m.CPU, m.Cores, m.MemTotal, m.Kernel, m.GoVersion, m.Commit, rc.markdown())
	if err := os.WriteFile(filepath.Join(o.OutDir, "replicated-core.md"), []byte(md), 0o644); err != nil {
		return nil, err
	}
	return rc, writeJSON(filepath.Join(o.OutDir, "replicated-core.json"), rc)
}

// replicatedCore starts a single core and a group, each with a worker,
// measures the rows and then the failover; it stops both.
func (e *env) replicatedCore(ctx context.Context) error {
	d := raft.DefaultConfig()
	sec := &ReplicatedCore{LoadAvg: loadAverage(), Rounds: e.o.PathRounds, Step: e.o.PathStep, Uploads: uploadsPerRound,
		Election: fmt.Sprintf("hashicorp/raft's defaults (the core sets no others): heartbeat timeout %s, election timeout %s, leader lease %s",
			d.HeartbeatTimeout, d.ElectionTimeout, d.LeaderLeaseTimeout)}
	e.r.Replicated = sec
	e.logf("replicated    starting a single core + worker and a group of three cores + worker (load average %s)", sec.LoadAvg)
	var (
		single     *platform
		group      *coreGroup
		sErr, gErr error
		wg         sync.WaitGroup
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		single, sErr = startPlatform(ctx, "single core", e.o.Binary, filepath.Join(e.dataDir, "single-core"), "127.0.0.1", 1)
	}()
	go func() {
		defer wg.Done()
		group, gErr = startGroup(ctx, "group", e.o.Binary, filepath.Join(e.dataDir, "group"), 1)
	}()
	wg.Wait()
	if single != nil {
		defer single.kill()
	}
	if group != nil {
		defer group.kill()
	}
	if sErr != nil || gErr != nil {
		return fmt.Errorf("start: %w", errors.Join(sErr, gErr))
	}
	leader, err := group.leader(ctx, nil)
	if err != nil {
		return err
	}
	follower := group.members[0]
	if follower == leader {
		follower = group.members[1]
	}
	code := e.code["hello-c"]
	rows := []*groupRow{
		newGroupRow("single core", single, []*platform{single}, single.pids),
		newGroupRow("group, leader", leader, group.members, group.pids),
		newGroupRow("group, follower", follower, group.members, group.pids),
	}
	if err := single.upload(ctx, groupFunction, code, nil); err != nil {
		return err
	}
	if err := leader.upload(ctx, groupFunction, code, nil); err != nil {
		return err
	}
	hello := work{groupFunction, []byte(`{"name":"edge"}`), contains("Hello, edge!")}
	for _, r := range rows {
		// A member answers from its own store once it has applied the upload.
		if err := wait.Until(ctx, 60*time.Second, groupFunction+" answers through "+r.name, func() bool {
			c, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			return hello.call(r.invoke)(c) == nil
		}); err != nil {
			return err
		}
		runLoad(ctx, loadSpec{Threads: 16, Duration: e.o.PathWarmup}, hello.call(r.invoke), nil)
	}

	if sec.Rows, err = e.groupRows(ctx, rows, code, hello); err != nil {
		return err
	}
	sec.Memory = e.groupMemory(ctx, rows[0], rows[1], group, hello)
	m := sec.Memory
	e.logf("replicated    memory run (hello, %d connections, %s): single core peak %.1f MiB (%.0f req/s); group members %.1f MiB, the leader first (%.0f req/s)",
		memoryConns, m.Duration, m.SingleMiB, m.SingleRPS, m.MembersMiB, m.GroupRPS)
	sec.Failover = e.failover(ctx, group, leader, hello)
	f := sec.Failover
	e.logf("replicated    kill -9 of the leader %s: first write after %s (%d refused), new leader %s; calls through the survivors %d, failed %d %s",
		f.Killed, f.FirstWrite.Round(time.Millisecond), f.Refused, f.NewLeader, f.Calls, f.CallErrors, f.Err)
	return nil
}

// groupRows measures each row PathRounds times, the rows' order reversed
// every other round, and returns the medians.
func (e *env) groupRows(ctx context.Context, rows []*groupRow, code []byte, hello work) ([]GroupRow, error) {
	uploads, enqueues, invokes := map[string][]Summary{}, map[string][]Summary{}, map[string][]Summary{}
	var seq atomic.Int64
	for round := range e.o.PathRounds {
		order := slices.Clone(rows)
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, r := range order {
			var names []string
			up := summarize(r.name, "replicated core: upload", runLoad(ctx, loadSpec{Threads: 1, PerThread: uploadsPerRound}, func(c context.Context) error {
				name := fmt.Sprintf("up_%d", seq.Add(1))
				names = append(names, name)
				return r.pl.upload(c, name, mark(code), nil)
			}, r.invoke.pids), 0)
			for _, n := range names { // untimed, to stay within the guest's quota of functions
				c, cancel := context.WithTimeout(ctx, 30*time.Second)
				r.pl.user.DeleteFunction(c, client.DefaultModule, n)
				cancel()
			}
			enq := summarize(r.name, "replicated core: enqueue", runLoad(ctx, loadSpec{Threads: enqueueConns, Duration: e.o.PathStep}, func(c context.Context) error {
				_, err := r.async.InvokeAsync(c, client.DefaultModule, groupFunction, json.RawMessage(`{"name":"later"}`), "")
				return err
			}, r.invoke.pids), 0)
			if err := drained(ctx, r.queues); err != nil {
				return nil, fmt.Errorf("%s: %w", r.name, err)
			}
			inv := summarize(r.name, "replicated core: C hello c=16", runLoad(ctx, loadSpec{Threads: 16, Duration: e.o.PathStep}, hello.call(r.invoke), r.invoke.pids), 0)
			uploads[r.name], enqueues[r.name], invokes[r.name] = append(uploads[r.name], up), append(enqueues[r.name], enq), append(invokes[r.name], inv)
			e.r.Workloads = append(e.r.Workloads, up, enq, inv)
			e.logf("replicated    %-15s upload p50 %s, enqueue %.0f/s, C hello c=16 %.0f req/s cpu/req=%.1fµs, errors %d/%d/%d",
				r.name, dur(up.P50), enq.Throughput, inv.Throughput, inv.CPUPerReq, up.Errors, enq.Errors, inv.Errors)
		}
	}
	var out []GroupRow
	for _, r := range rows {
		row := GroupRow{Target: r.name,
			UploadP50:  pooledP50(uploads[r.name]),
			EnqueueRPS: median(enqueues[r.name], func(s Summary) float64 { return s.Throughput }),
			InvokeRPS:  median(invokes[r.name], func(s Summary) float64 { return s.Throughput }),
			InvokeCPU:  median(invokes[r.name], func(s Summary) float64 { return s.CPUPerReq }),
		}
		for _, s := range slices.Concat(uploads[r.name], enqueues[r.name], invokes[r.name]) {
			row.Errors += s.Errors
		}
		out = append(out, row)
	}
	return out, nil
}

// pooledP50 is the median latency of every request of ss: uploads are
// few per round, so their rounds are pooled.
func pooledP50(ss []Summary) float64 {
	var all []time.Duration
	for _, s := range ss {
		all = append(all, s.latencies...)
	}
	slices.Sort(all)
	return us(pct(all, 0.5))
}

// newGroupRow is the row of the core pl, whose shape's processes are pids.
func newGroupRow(name string, pl *platform, queues []*platform, pids func() []int) *groupRow {
	async, _ := client.New(pl.url, pl.guest) // pl.url parsed once already
	async.HTTP.Transport.(*http.Transport).MaxIdleConnsPerHost = enqueueConns
	return &groupRow{name: name, pl: pl, queues: queues, invoke: httpTarget(name, pl.url, pl.guest, pids), async: async}
}

// drained waits until the asynchronous queue of every core given is empty.
func drained(ctx context.Context, cores []*platform) error {
	return wait.Until(ctx, 2*time.Minute, "the asynchronous queue drains", func() bool {
		for _, c := range cores {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			st, err := c.api.AdminStatus(cctx)
			cancel()
			if err != nil || st.QueueLength > 0 {
				return false
			}
		}
		return true
	})
}

// groupMemory runs the memory run through the single core, then through
// the group's leader, each core's peak RSS reset first.
func (e *env) groupMemory(ctx context.Context, single, leader *groupRow, g *coreGroup, hello work) GroupMemory {
	m := GroupMemory{Duration: memoryRun}
	run := func(r *groupRow, cores []*platform) ([]float64, float64) {
		for _, c := range cores {
			resetPeak(c.core.pid())
		}
		res := summarize(r.name, "replicated core: memory run", runLoad(ctx, loadSpec{Threads: memoryConns, Duration: memoryRun}, hello.call(r.invoke), r.invoke.pids), 0)
		e.r.Workloads = append(e.r.Workloads, res)
		var peaks []float64
		for _, c := range cores {
			peaks = append(peaks, mib(peakRSS(c.core.pid())))
		}
		return peaks, res.Throughput
	}
	var peaks []float64
	peaks, m.SingleRPS = run(single, []*platform{single.pl})
	m.SingleMiB = peaks[0]
	members := []*platform{leader.pl}
	for _, c := range g.members {
		if c != leader.pl {
			members = append(members, c)
		}
	}
	m.MembersMiB, m.GroupRPS = run(leader, members)
	return m
}

// failover kills the group's leader with SIGKILL 1 s into failoverWindow
// of synchronous calls through the two other members, and times the
// first write a survivor acknowledges after it.
func (e *env) failover(ctx context.Context, g *coreGroup, leader *platform, hello work) Failover {
	f := Failover{Killed: leader.name}
	var survivors []*platform
	for _, m := range g.members {
		if m != leader {
			survivors = append(survivors, m)
		}
	}
	results := make([]*runResult, len(survivors))
	var wg sync.WaitGroup
	for i, s := range survivors {
		t := httpTarget(s.name, s.url, s.guest, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runLoad(ctx, loadSpec{Threads: 2, Duration: failoverWindow}, hello.call(t), nil)
		}()
	}
	select {
	case <-ctx.Done():
	case <-time.After(time.Second):
	}
	killed := time.Now()
	leader.core.kill()
	f.FirstWrite, f.Refused = firstWrite(ctx, survivors, killed)
	wg.Wait()
	for i, r := range results {
		s := summarize(survivors[i].name, "replicated core: calls across kill -9 of the leader", r, 0)
		e.r.Workloads = append(e.r.Workloads, s)
		f.Calls += s.Requests
		f.CallErrors += s.Errors
		if f.FirstError == "" {
			f.FirstError = s.FirstError
		}
	}
	switch next, err := g.leader(ctx, leader); {
	case f.FirstWrite == 0:
		f.Err = fmt.Sprintf("no write acknowledged within %s of the kill", failoverLimit)
	case err != nil:
		f.Err = err.Error()
	default:
		f.NewLeader = next.name
		if f.FirstWrite > failoverWindow-time.Second {
			f.Err = "the calls ended before the first write"
		}
	}
	return f
}

// firstWrite creates a module through each survivor every 50 ms, each
// write not waiting for the one before, until one is acknowledged, and
// returns the time from killed to that acknowledgement (0: none within
// failoverLimit) and how many writes were refused or failed before it.
func firstWrite(ctx context.Context, survivors []*platform, killed time.Time) (time.Duration, int) {
	ctx, cancel := context.WithTimeout(ctx, failoverLimit)
	defer cancel()
	var (
		mu      sync.Mutex
		first   time.Time
		refused int
		wg      sync.WaitGroup
		seq     int
	)
	acked := make(chan struct{})
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	defer wg.Wait()
	defer cancel()
	for {
		for _, s := range survivors {
			seq++
			name := fmt.Sprintf("failover_%d", seq)
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, done := context.WithTimeout(ctx, 10*time.Second)
				err := s.api.CreateModule(c, name)
				done()
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil && first.IsZero():
					first = time.Now()
					close(acked)
				case err != nil && first.IsZero() && ctx.Err() == nil:
					refused++
				}
			}()
		}
		select {
		case <-acked:
			mu.Lock()
			defer mu.Unlock()
			return first.Sub(killed), refused
		case <-ctx.Done():
			mu.Lock()
			defer mu.Unlock()
			return 0, refused
		case <-tick.C:
		}
	}
}

// Errors counts the section's failed or timed-out requests.
func (rc *ReplicatedCore) Errors() int {
	n := rc.Failover.CallErrors
	for _, r := range rc.Rows {
		n += r.Errors
	}
	return n
}

// goals are the section's figures against their goals
// (docs/RATIONALE.md#why-a-replicated-core-uses-raft): for each, the
// worse of the group's leader and follower.
func (rc *ReplicatedCore) goals() []pathGoal {
	var single GroupRow
	var group []GroupRow
	for _, r := range rc.Rows {
		if r.Target == "single core" {
			single = r
		} else {
			group = append(group, r)
		}
	}
	if single.Target == "" || len(group) == 0 {
		return nil
	}
	worst := func(f func(GroupRow) float64, higherIsWorse bool) float64 {
		w := f(group[0])
		for _, r := range group[1:] {
			if v := f(r); (v > w) == higherIsWorse {
				w = v
			}
		}
		return w
	}
	up := ratio(worst(func(r GroupRow) float64 { return r.UploadP50 }, true), single.UploadP50)
	enq := ratio(worst(func(r GroupRow) float64 { return r.EnqueueRPS }, false), single.EnqueueRPS)
	inv := ratio(worst(func(r GroupRow) float64 { return r.InvokeRPS }, false), single.InvokeRPS)
	f := rc.Failover
	mem := 0.0
	if len(rc.Memory.MembersMiB) > 0 {
		mem = ratio(slices.Max(rc.Memory.MembersMiB), rc.Memory.SingleMiB)
	}
	return []pathGoal{
		{"kill -9 of the leader → first write acknowledged by a survivor", fmt.Sprintf("%.2f s", f.FirstWrite.Seconds()), "≤ 3 s", f.FirstWrite > 0 && f.FirstWrite <= 3*time.Second},
		{"synchronous calls through the survivors that failed", fmt.Sprintf("%d of %d", f.CallErrors, f.Calls), "0", f.Calls > 0 && f.CallErrors == 0},
		{"upload p50, group ÷ single core", x(up), "≤ 2×", up > 0 && up <= 2},
		{"enqueue req/s, group ÷ single core", x(enq), "≥ 0.5×", enq >= 0.5},
		{"C hello at 16 connections, group member ÷ single core", x(inv), "≥ 0.9×", inv >= 0.9},
		{"core peak RSS in the memory run, largest group member ÷ single core", x(mem), "≤ 1.25×", mem > 0 && mem <= 1.25},
	}
}

// markdown renders the section.
func (rc *ReplicatedCore) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("## Replicated core — a group of three cores against a single core\n\n")
	w("A single core and a core group of three (127.0.0.1–3), each with one worker process, started fresh and measured in this run (load average %s at the section's start); Raft: %s. ", rc.LoadAvg, rc.Election)
	w("Medians of %d rounds, the rows' order reversed every other round: %d uploads of the C hello, one after another, each with new code (so the whole code goes through the log), the answer waiting for the worker's compile; %s of asynchronous calls at %d connections (acknowledged 202, the queue drained before the next run); %s of the C hello at 16 connections (CPU: every process of the shape, the group's three cores and worker). A follower forwards writes to the leader.\n\n",
		rc.Rounds, rc.Uploads, rc.Step, enqueueConns, rc.Step)
	w("| core taking the load | upload p50 | enqueue req/s | C hello, 16 conn req/s | CPU per call | errors |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range rc.Rows {
		w("| %s | %s | %.0f | %.0f | %s | %d |\n", r.Target, dur(r.UploadP50), r.EnqueueRPS, r.InvokeRPS, dur(r.InvokeCPU), r.Errors)
	}
	m := rc.Memory
	w("\nMemory run (the paper's shape: the hello at %d connections, here the C hello, %s) through the single core, then through the group's leader: each core process's peak RSS (VmHWM, reset before the run): single core %.1f MiB (%.0f req/s); group members %s MiB, the leader first (%.0f req/s).\n",
		memoryConns, m.Duration, m.SingleMiB, m.SingleRPS, mibList(m.MembersMiB), m.GroupRPS)
	f := rc.Failover
	w("\nkill -9 of the leader (%s), 1 s into %s of synchronous calls (2 connections to each survivor): the first write (a module created through each survivor every 50 ms) acknowledged %s after the kill, %d refused or failed before; new leader %s; calls %d, failed %d.",
		f.Killed, failoverWindow, dur(us(f.FirstWrite)), f.Refused, f.NewLeader, f.Calls, f.CallErrors)
	if f.FirstError != "" {
		w(" First failed call: `%s`.", oneLine(f.FirstError))
	}
	if f.Err != "" {
		w(" **%s.**", f.Err)
	}
	w("\n\n")
	writeGoals(w, rc.goals())
	return b.String()
}

// mibList is "a, b, c" with one decimal.
func mibList(v []float64) string {
	var parts []string
	for _, f := range v {
		parts = append(parts, fmt.Sprintf("%.1f", f))
	}
	return strings.Join(parts, ", ")
}
