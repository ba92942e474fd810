package group_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/functionmodel"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// The configured bounds a call must be answered within. invokeTimeout is
// the invoked function's own timeout (its metadata's timeout_ms): past
// it the worker stops the call. writeTimeout is each write's deadline in
// its client.
const (
	invokeTimeout = 10 * time.Second
	writeTimeout  = 30 * time.Second
)

// streamShape is how much a stream does: short in make test, longer
// behind -group.long.
type streamShape struct {
	writersPerCore int // clients writing through each core
	names          int // the function names they share
	kills          int // leaders killed, each after the one before restarted
}

// TestStreamLosesNothingThroughLeaderKills: clients stream creates,
// updates and deletes of a few shared functions, synchronous calls and
// asynchronous calls through all three cores, with two workers; the
// leader is killed with SIGKILL mid-stream, restarts and catches up,
// then the new leader is killed too. Every answer is one the platform
// may give (a write: its result, or 503 with Retry-After; a call: 200
// with its output) before the configured timeout, unless its core was
// killed under it. The writes' history, call and answer per client, and
// the functions every live core holds at the end are linearizable
// (porcupine, internal/testing/functionmodel): no acknowledged write is
// lost or changed, no refused one took effect. Every acknowledged
// asynchronous call finished, and its record is on every live core.
// The dead core is then removed through a survivor.
func TestStreamLosesNothingThroughLeaderKills(t *testing.T) {
	shape := streamShape{writersPerCore: 1, names: 3, kills: 2}
	if *long {
		shape = streamShape{writersPerCore: 3, names: 6, kills: 10}
	}
	g := startGroup(t)
	g.startWorker(t, "127.0.0.4")
	g.startWorker(t, "127.0.0.5")
	no := false
	setUp(t, g.client(t, g.cores[0]), client.Upload{Name: "echo", Code: testmodules.Read(t, "test/echo"),
		Metadata: &client.Metadata{TimeoutMS: invokeTimeout.Milliseconds()}, WaitForWorkers: &no})
	for _, m := range g.cores {
		cl := g.client(t, m)
		wait.ForState(t, 60*time.Second, "echo answers through "+m.host, func() (bool, string) {
			_, err := cl.Invoke(ctxT(t, 2*invokeTimeout), "demo", "echo", json.RawMessage(`{}`))
			return err == nil, fmt.Sprint(err)
		})
	}

	s := newStream(t, g, shape)
	s.start()
	s.waitAcks(g.cores, 2, "writes acknowledged through every core before the first kill")
	var dead *member
	for k := range shape.kills {
		if k > 0 {
			// The core killed last restarts on its data and takes
			// writes again before the next leader is killed.
			s.restart(dead)
			s.waitAcks([]*member{dead}, 1, "a write acknowledged through the restarted "+dead.host)
		}
		dead = s.leader()
		s.kill(dead)
		s.waitAcks(s.live(), 2, fmt.Sprintf("writes acknowledged through the survivors of kill %d", k+1))
	}
	s.halt()

	live := s.live()
	for i, f := range s.failures {
		if i == 20 {
			t.Errorf("and %d more", len(s.failures)-i)
			break
		}
		t.Error(f)
	}
	for _, m := range live {
		if s.answered[m] == 0 {
			t.Errorf("no synchronous call answered through %s", m.host)
		}
	}
	s.readFinalState(live)
	counts := s.history.Results()
	t.Logf("%d kills; writes by answer, with the final reads: %v; 503s by %s: %v; calls cut by a kill: %d; calls answered by core: %v; longest write %v (bound %v), call %v (bound %v); first write acknowledged after each kill: %v",
		shape.kills, counts, client.GroupWriteHeader, s.refusals, s.cut, s.answeredByHost(), s.slowestWrite.Round(time.Millisecond), writeTimeout,
		s.slowestCall.Round(time.Millisecond), invokeTimeout, s.recovery)
	for _, op := range []string{functionmodel.Create, functionmodel.Update, functionmodel.Delete} {
		if counts[op+" ok"] == 0 {
			t.Errorf("no %s acknowledged: the history checks little", op)
		}
	}
	if err := s.history.Check(); err != nil {
		t.Fatal(err)
	}
	s.asyncFinished(live)

	// The dead core is removed from the group through a survivor, which
	// passes the request to the leader if it does not lead.
	other := live[0]
	if err := g.client(t, other).RemoveGroupMember(ctxT(t, 30*time.Second), dead.groupAddr); err != nil {
		t.Fatalf("remove %s through %s: %v", dead.groupAddr, other.host, err)
	}
	if err := g.client(t, other).RemoveGroupMember(ctxT(t, 30*time.Second), "10.9.9.9:1"); !client.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("remove a member the group does not have: %v, want 404", err)
	}
	wait.ForState(t, 30*time.Second, "two members listed by "+live[1].host, func() (bool, string) {
		ms, err := g.client(t, live[1]).GroupMembers(ctxT(t, 30*time.Second))
		return err == nil && len(ms) == 2, fmt.Sprintf("%+v %v", ms, err)
	})
}

// stream is the clients of TestStreamLosesNothingThroughLeaderKills and
// what they saw.
type stream struct {
	t       *testing.T
	g       *group
	shape   streamShape
	code    []byte
	names   []string
	history functionmodel.History
	stop    chan struct{}
	halted  sync.Once
	wg      sync.WaitGroup

	mu           sync.Mutex
	up           map[*member]chan struct{} // closed while the core serves
	epoch        map[*member]int           // kills of the core so far
	acks         map[*member]int           // writes acknowledged through the core
	answered     map[*member]int           // synchronous calls answered through the core
	async        map[string]string         // acknowledged asynchronous call → its args
	refusals     map[string]int            // 503s by what they said of the write
	cut          int                       // calls whose core was killed under them
	failures     []string                  // answers the platform must not give
	slowestWrite time.Duration
	slowestCall  time.Duration
	killedAt     time.Time
	recovery     []time.Duration // kill → the first write a survivor acknowledged
}

func newStream(t *testing.T, g *group, shape streamShape) *stream {
	s := &stream{t: t, g: g, shape: shape, code: testmodules.Read(t, "test/echo"), stop: make(chan struct{}),
		up: map[*member]chan struct{}{}, epoch: map[*member]int{}, acks: map[*member]int{}, answered: map[*member]int{},
		async: map[string]string{}, refusals: map[string]int{}}
	for i := range shape.names {
		s.names = append(s.names, fmt.Sprintf("f%d", i))
	}
	for _, m := range g.cores {
		c := make(chan struct{})
		close(c)
		s.up[m] = c
	}
	// Before the processes are killed, if the test ends early.
	t.Cleanup(s.halt)
	return s
}

// halt stops the clients and waits for their last calls.
func (s *stream) halt() {
	s.halted.Do(func() { close(s.stop) })
	s.wg.Wait()
}

// start starts the clients: through each core, its writers, one caller
// and one asynchronous caller.
func (s *stream) start() {
	writers := 0
	for _, m := range s.g.cores {
		for range s.shape.writersPerCore {
			id := writers
			writers++
			rng := rand.New(rand.NewPCG(uint64(id), 7))
			s.run(m, func(cl *client.Client, i, epoch int) { s.write(m, cl, id, rng, i, epoch) })
		}
		s.run(m, func(cl *client.Client, i, epoch int) { s.invoke(m, cl, i, epoch) })
		s.run(m, func(cl *client.Client, i, epoch int) { s.enqueue(m, cl, i, epoch) })
	}
}

// run calls op through m until the stream stops, pausing while the test
// holds m down; op is given the count of m's kills as it starts.
func (s *stream) run(m *member, op func(cl *client.Client, i, epoch int)) {
	cl := s.g.client(s.t, m)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for i := 0; ; i++ {
			s.mu.Lock()
			up, epoch := s.up[m], s.epoch[m]
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-up:
			}
			op(cl, i, epoch)
		}
	}()
}

// write creates, updates or deletes one of the shared functions through
// m and records it in the history.
func (s *stream) write(m *member, cl *client.Client, clientID int, rng *rand.Rand, i, epoch int) {
	in := functionmodel.Input{Name: s.names[rng.IntN(len(s.names))]}
	switch r := rng.IntN(10); {
	case r < 3:
		in.Op, in.Content = functionmodel.Create, fmt.Sprintf("c%d.%d", clientID, i)
	case r < 7:
		in.Op, in.Content = functionmodel.Update, fmt.Sprintf("u%d.%d", clientID, i)
	default:
		in.Op = functionmodel.Delete
	}
	no := false
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	call := s.history.Call()
	start := time.Now()
	var f client.Function
	var err error
	switch in.Op {
	case functionmodel.Create:
		f, err = cl.CreateFunction(ctx, "demo", client.Upload{Name: in.Name, Code: s.code, Metadata: &client.Metadata{Tag: in.Content}, WaitForWorkers: &no})
	case functionmodel.Update:
		f, err = cl.UpdateFunction(ctx, "demo", in.Name, client.Upload{Metadata: &client.Metadata{Tag: in.Content}, WaitForWorkers: &no})
	case functionmodel.Delete:
		err = cl.DeleteFunction(ctx, "demo", in.Name)
	}
	took := time.Since(start)
	out, record := s.writeAnswer(m, epoch, in, f, err)
	s.mu.Lock()
	s.slowestWrite = max(s.slowestWrite, took)
	if out.Result == functionmodel.OK {
		s.acks[m]++
		if !s.killedAt.IsZero() && start.After(s.killedAt) {
			s.recovery = append(s.recovery, time.Since(s.killedAt).Round(100*time.Millisecond))
			s.killedAt = time.Time{}
		}
	}
	s.mu.Unlock()
	if record {
		s.history.Add(clientID, in, call, out)
	}
	s.retryAfter(err)
}

// retryAfter waits as a 503's Retry-After says before the client's next
// write, or until the stream stops.
func (s *stream) retryAfter(err error) {
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable {
		return
	}
	secs, perr := strconv.Atoi(ae.RetryAfter)
	if perr != nil {
		return
	}
	select {
	case <-s.stop:
	case <-time.After(time.Duration(secs) * time.Second):
	}
}

// writeAnswer reads a write's answer as the model's, and whether the
// history takes it: a write that surely did not take effect is left out.
// An answer the platform must not give is a failure, recorded as of
// unknown outcome.
func (s *stream) writeAnswer(m *member, epoch int, in functionmodel.Input, f client.Function, err error) (functionmodel.Output, bool) {
	var ae *client.Error
	switch {
	case err == nil:
		return functionmodel.Output{Result: functionmodel.OK, Version: f.Version}, true
	case client.IsStatus(err, http.StatusConflict) && in.Op == functionmodel.Create:
		return functionmodel.Output{Result: functionmodel.Exists}, true
	case client.IsStatus(err, http.StatusConflict):
		return functionmodel.Output{Result: functionmodel.Changed}, true
	case client.IsStatus(err, http.StatusNotFound) && in.Op != functionmodel.Create:
		return functionmodel.Output{Result: functionmodel.NotFound}, true
	case errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable && ae.RetryAfter != "":
		s.mu.Lock()
		defer s.mu.Unlock()
		s.refusals[ae.GroupWrite]++
		if ae.GroupWrite == client.GroupWriteRefused {
			return functionmodel.Output{}, false
		}
		return functionmodel.Output{Result: functionmodel.Unknown}, true
	case s.cutByKill(m, epoch, err):
		if errors.Is(err, syscall.ECONNREFUSED) {
			return functionmodel.Output{}, false
		}
		return functionmodel.Output{Result: functionmodel.Unknown}, true
	}
	s.fail("%s %s through %s: %v", in.Op, in.Name, m.host, err)
	return functionmodel.Output{Result: functionmodel.Unknown}, true
}

// invoke calls echo through m and checks the answer is its args.
func (s *stream) invoke(m *member, cl *client.Client, i, epoch int) {
	args := fmt.Sprintf(`{"via":%q,"i":%d}`, m.host, i)
	ctx, cancel := context.WithTimeout(context.Background(), 2*invokeTimeout)
	defer cancel()
	start := time.Now()
	out, err := cl.Invoke(ctx, "demo", "echo", json.RawMessage(args))
	took := time.Since(start)
	switch {
	case err == nil && sameJSON(out, []byte(args)) && took < invokeTimeout:
		s.mu.Lock()
		s.answered[m]++
		s.slowestCall = max(s.slowestCall, took)
		s.mu.Unlock()
	case err != nil && s.cutByKill(m, epoch, err):
	default:
		s.fail("call through %s: %s %v after %v", m.host, out, err, took.Round(time.Millisecond))
	}
	// Calls are paced by the others: the two shared cores run all three
	// cores, both workers and the test.
	time.Sleep(20 * time.Millisecond)
}

// enqueue queues a call of echo through m.
func (s *stream) enqueue(m *member, cl *client.Client, i, epoch int) {
	args := fmt.Sprintf(`{"queued":%q,"i":%d}`, m.host, i)
	ctx, cancel := context.WithTimeout(context.Background(), writeTimeout)
	defer cancel()
	id, err := cl.InvokeAsync(ctx, "demo", "echo", json.RawMessage(args), "")
	var ae *client.Error
	switch {
	case err == nil:
		s.mu.Lock()
		s.async[id] = args
		s.mu.Unlock()
	case errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable && ae.RetryAfter != "":
	case s.cutByKill(m, epoch, err):
	default:
		s.fail("queue a call through %s: %v", m.host, err)
	}
	s.retryAfter(err)
	time.Sleep(100 * time.Millisecond)
}

// cutByKill reports whether err is m's connection lost because the test
// killed m after the call started (at epoch), and counts it.
func (s *stream) cutByKill(m *member, epoch int, err error) bool {
	var ae *client.Error
	if errors.As(err, &ae) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.epoch[m] == epoch {
		return false
	}
	s.cut++
	return true
}

func (s *stream) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, fmt.Sprintf(format, args...))
}

// live returns the cores the test has not killed or has seen restarted.
func (s *stream) live() []*member {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*member
	for _, m := range s.g.cores {
		select {
		case <-s.up[m]:
			out = append(out, m)
		default:
		}
	}
	return out
}

// kill holds m down, then kills it with SIGKILL.
func (s *stream) kill(m *member) {
	s.mu.Lock()
	s.up[m] = make(chan struct{})
	s.epoch[m]++
	s.killedAt = time.Now()
	s.mu.Unlock()
	m.Kill()
}

// restart starts m again on its data and lets its clients go on once it
// listens and both workers are attached to it again.
func (s *stream) restart(m *member) {
	s.t.Helper()
	from := m.Process.Log.Len()
	m.Restart()
	if _, err := m.Process.WaitLog(testcluster.ListeningRE, from, 60*time.Second); err != nil {
		s.t.Fatalf("the killed core %s does not listen again: %v", m.host, err)
	}
	cl := s.g.client(s.t, m)
	wait.ForState(s.t, 60*time.Second, "both workers attached to the restarted "+m.host, func() (bool, string) {
		ns, err := cl.ListNodes(ctxT(s.t, 5*time.Second))
		return err == nil && testcluster.Has(ns, "worker@127.0.0.4") && testcluster.Has(ns, "worker@127.0.0.5"), fmt.Sprint(ns, err)
	})
	s.mu.Lock()
	close(s.up[m])
	s.mu.Unlock()
}

// leader is the live core that says it leads.
func (s *stream) leader() *member {
	s.t.Helper()
	var found *member
	wait.ForState(s.t, 60*time.Second, "a live core leads", func() (bool, string) {
		var seen []string
		for _, m := range s.live() {
			ms, err := s.g.client(s.t, m).GroupMembers(ctxT(s.t, 10*time.Second))
			for _, gm := range ms {
				if gm.Self {
					seen = append(seen, m.host+" "+gm.Role)
				}
				if gm.Self && gm.Role == "leader" {
					found = m
					return true, ""
				}
			}
			if err != nil {
				seen = append(seen, m.host+" "+err.Error())
			}
		}
		return false, strings.Join(seen, "; ")
	})
	return found
}

// waitAcks waits until n more writes are acknowledged through each of
// the cores.
func (s *stream) waitAcks(cores []*member, n int, what string) {
	s.t.Helper()
	s.mu.Lock()
	base := map[*member]int{}
	for _, m := range cores {
		base[m] = s.acks[m]
	}
	s.mu.Unlock()
	wait.ForState(s.t, 60*time.Second, what, func() (bool, string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		var got []string
		ok := true
		for _, m := range cores {
			got = append(got, fmt.Sprintf("%s %d", m.host, s.acks[m]-base[m]))
			ok = ok && s.acks[m]-base[m] >= n
		}
		return ok, fmt.Sprintf("%v; 503s %v; failures %d", got, s.refusals, len(s.failures))
	})
}

// finalRecord is what one core holds of one function.
type finalRecord struct {
	present bool
	version uint64
	tag     string
}

// readFinalState waits until the live cores hold the same functions,
// then adds each core's reads to the history, after every write.
func (s *stream) readFinalState(live []*member) {
	s.t.Helper()
	read := func(m *member) (map[string]finalRecord, error) {
		cl := s.g.client(s.t, m)
		out := map[string]finalRecord{}
		for _, name := range s.names {
			f, err := cl.GetFunction(ctxT(s.t, 10*time.Second), "demo", name)
			switch {
			case err == nil:
				out[name] = finalRecord{present: true, version: f.Version, tag: f.Metadata.Tag}
			case client.IsStatus(err, http.StatusNotFound):
				out[name] = finalRecord{}
			default:
				return nil, err
			}
		}
		return out, nil
	}
	var held []map[string]finalRecord
	wait.ForState(s.t, 60*time.Second, "the live cores hold the same functions", func() (bool, string) {
		held = held[:0]
		for _, m := range live {
			h, err := read(m)
			if err != nil {
				return false, fmt.Sprintf("%s: %v", m.host, err)
			}
			held = append(held, h)
		}
		for _, h := range held[1:] {
			if !reflect.DeepEqual(h, held[0]) {
				return false, fmt.Sprintf("%+v", held)
			}
		}
		return true, ""
	})
	for i, m := range live {
		for _, name := range s.names {
			call := s.history.Call()
			r := held[i][name]
			out := functionmodel.Output{Result: functionmodel.Absent}
			if r.present {
				out = functionmodel.Output{Result: functionmodel.Present, Version: r.version, Content: r.tag}
			}
			s.history.Add(1000+i, functionmodel.Input{Op: functionmodel.Read, Name: name}, call, out)
		}
		s.t.Logf("functions on %s at the end: %+v", m.host, held[i])
	}
}

// asyncFinished waits until every acknowledged asynchronous call has
// finished, read on each live core: run once at least, successfully,
// with its args echoed.
func (s *stream) asyncFinished(live []*member) {
	s.t.Helper()
	if len(s.async) == 0 {
		s.t.Fatal("no asynchronous call acknowledged")
	}
	for _, m := range live {
		cl := s.g.client(s.t, m)
		wait.ForState(s.t, 90*time.Second, "every acknowledged asynchronous call finished, read on "+m.host, func() (bool, string) {
			var waiting []string
			for id, args := range s.async {
				a, err := cl.GetActivation(ctxT(s.t, 10*time.Second), id)
				switch {
				case err != nil:
					waiting = append(waiting, fmt.Sprintf("%s: %v", id, err))
				case !a.Final():
					waiting = append(waiting, fmt.Sprintf("%s: %s", id, a.Status))
				case a.Status != "success" || !sameJSON(a.Result, []byte(args)):
					s.t.Fatalf("asynchronous call %s (%s) on %s: %+v", id, args, m.host, a)
				}
			}
			sort.Strings(waiting)
			return len(waiting) == 0, fmt.Sprintf("%d of %d not finished: %v", len(waiting), len(s.async), waiting[:min(len(waiting), 10)])
		})
	}
	s.t.Logf("%d asynchronous calls acknowledged, each finished on every live core", len(s.async))
}

func (s *stream) answeredByHost() map[string]int {
	out := map[string]int{}
	for m, n := range s.answered {
		out[m.host] = n
	}
	return out
}

// sameJSON reports whether a and b are the same JSON value.
func sameJSON(a, b []byte) bool {
	var va, vb any
	return json.Unmarshal(a, &va) == nil && json.Unmarshal(b, &vb) == nil && reflect.DeepEqual(va, vb)
}
