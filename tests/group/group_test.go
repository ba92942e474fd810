// Package group_test runs a core group of three real edgefaas cores on
// 127.0.0.1–3 and workers joined to all of them: a function created
// through one core is invocable through every core, a follower forwards
// writes to the leader, and a stream of writes and calls through every
// core loses nothing through kill -9 of one leader, then of the next,
// its history linearizable.
package group_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/diskfill"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// member is one core of the group.
type member struct {
	*testcluster.Proc
	host      string
	url       string
	nodeAddr  string
	groupAddr string
	data      string // its data directory
}

// group is a running group and its admin token.
type group struct {
	cores  []*member
	admin  string
	cookie string
}

// startGroup starts three cores: the first makes the group, the others
// join it through the first; it returns once every core answers the
// first core's admin token (it holds the replicated subjects).
func startGroup(t *testing.T) *group {
	t.Helper()
	disk := dataDisk(t)
	return startGroupOn(t, func(host string) string { return filepath.Join(disk, host) })
}

// startGroupOn is startGroup with each core's data under dataOf(its host),
// each core given the extra arguments too.
func startGroupOn(t *testing.T, dataOf func(host string) string, extra ...string) *group {
	t.Helper()
	g := &group{}
	for _, host := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		g.addCore(t, host, dataOf(host), extra...)
	}
	for _, m := range g.cores {
		g.waitSubjects(t, m)
	}
	return g
}

// addCore starts a core on host with its data under data: the group's
// first makes the group, any other joins it through the first.
func (g *group) addCore(t *testing.T, host, data string, extra ...string) *member {
	t.Helper()
	dir := t.TempDir()
	m := &member{host: host, nodeAddr: host + ":" + testcluster.Port(t, host), groupAddr: host + ":" + testcluster.Port(t, host),
		data: filepath.Join(data, "core")}
	args := []string{"core", "--data-dir", m.data, "--http-addr", host + ":" + testcluster.Port(t, host),
		"--node-addr", m.nodeAddr, "--group-addr", m.groupAddr}
	args = append(args, extra...)
	if len(g.cores) > 0 {
		args = append(args, "--join-group", g.cores[0].groupAddr, "--cookie-file", g.cookie)
	}
	m.Proc = testcluster.Start(t, dir, args...)
	m.url = "http://" + m.WaitLog(testcluster.ListeningRE, 60*time.Second)[1]
	if len(g.cores) == 0 {
		g.cookie = filepath.Join(data, "core", "cookie")
		var err error
		if g.admin, _, err = testcluster.ReadTokens(filepath.Join(data, "core")); err != nil {
			t.Fatal(err)
		}
	}
	g.cores = append(g.cores, m)
	return m
}

// waitSubjects waits until m answers the first core's admin token (it
// holds the replicated subjects).
func (g *group) waitSubjects(t *testing.T, m *member) {
	t.Helper()
	cl := g.client(t, m)
	wait.For(t, 60*time.Second, m.host+" holds the group's subjects", func() bool {
		_, err := cl.ListModules(ctxT(t, 5*time.Second))
		return err == nil
	})
}

// dataDisk is where the cores keep their data: a tmpfs of the test's
// own, so their free-space floors and reserve files are sized from it
// and not from a shared disk; a plain temporary directory if the test
// cannot mount one.
func dataDisk(t *testing.T) string {
	t.Helper()
	disk, err := diskfill.Tmpfs(t, 1<<30)
	if err != nil {
		t.Logf("data on the temporary directory's disk: %v", err)
	}
	return disk
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	c, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return c
}

func (g *group) client(t *testing.T, m *member) *client.Client {
	t.Helper()
	cl, err := client.New(m.url, g.admin)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// startWorker starts a worker joined to every core of the group.
func (g *group) startWorker(t *testing.T, host string) { g.startWorkerOn(t, host, g.cores) }

// startWorkerOn starts a worker joined to the cores given.
func (g *group) startWorkerOn(t *testing.T, host string, cores []*member) {
	t.Helper()
	dir := t.TempDir()
	args := []string{"worker", "--data-dir", filepath.Join(dir, "worker"), "--node-addr", host + ":" + testcluster.Port(t, host),
		"--cookie-file", g.cookie}
	for _, m := range cores {
		args = append(args, "--join", m.nodeAddr)
	}
	testcluster.Start(t, dir, args...)
	for _, m := range cores {
		cl := g.client(t, m)
		wait.For(t, 60*time.Second, "core "+m.host+" lists worker@"+host, func() bool {
			ns, err := cl.ListNodes(ctxT(t, 5*time.Second))
			return err == nil && testcluster.Has(ns, "worker@"+host)
		})
	}
}

var leadsRE = regexp.MustCompile(`core group: this core (leads|no longer leads)`)

// others returns the cores but m, in their order.
func (g *group) others(m *member) []*member {
	var out []*member
	for _, o := range g.cores {
		if o != m {
			out = append(out, o)
		}
	}
	return out
}

// leader is the live core whose last word on leadership is that it leads.
func (g *group) leader(t *testing.T, dead map[*member]bool) *member {
	t.Helper()
	var found *member
	wait.For(t, 30*time.Second, "a core leads", func() bool {
		for _, m := range g.cores {
			if dead[m] {
				continue
			}
			ms := leadsRE.FindAllStringSubmatch(m.Log(), -1)
			if len(ms) > 0 && ms[len(ms)-1][1] == "leads" {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

// create uploads code as function name of module demo through cl,
// without waiting for workers.
func create(ctx context.Context, cl *client.Client, name string, code []byte) error {
	no := false
	_, err := cl.CreateFunction(ctx, "demo", client.Upload{Name: name, Code: code, WaitForWorkers: &no})
	return err
}

// TestGroupServesOneState: a function created through the leader is
// invocable through every core; one created through a follower is
// forwarded to the leader and is then on every core too. A cron trigger
// created through a follower runs on the leader only; a call queued
// through a follower runs. With the two
// other cores killed, the last one refuses writes (503, Retry-After,
// saying the write was not applied) and still invokes.
func TestGroupServesOneState(t *testing.T) {
	g := startGroup(t)
	g.startWorker(t, "127.0.0.4")
	lead := g.leader(t, nil)
	code := testmodules.Read(t, "hello")
	if err := g.client(t, lead).CreateModule(ctxT(t, 30*time.Second), "demo"); err != nil {
		t.Fatal(err)
	}
	if err := create(ctxT(t, 60*time.Second), g.client(t, lead), "hello", code); err != nil {
		t.Fatalf("create through the leader %s: %v", lead.host, err)
	}
	var follower *member
	for _, m := range g.cores {
		if m != lead {
			follower = m
		}
	}
	if err := create(ctxT(t, 60*time.Second), g.client(t, follower), "hello2", code); err != nil {
		t.Fatalf("create through the follower %s (forwarded): %v", follower.host, err)
	}
	for _, m := range g.cores {
		cl := g.client(t, m)
		for _, fn := range []string{"hello", "hello2"} {
			var out json.RawMessage
			wait.ForState(t, 60*time.Second, fn+" answers through "+m.host, func() (bool, string) {
				var err error
				out, err = cl.Invoke(ctxT(t, 30*time.Second), "demo", fn, json.RawMessage(`{"name":"group"}`))
				return err == nil, fmt.Sprint(err)
			})
			if string(out) != `{"message":"Hello, group!"}` {
				t.Fatalf("%s through %s: %s", fn, m.host, out)
			}
		}
	}

	// A synchronous call's record is kept by every core, whichever core
	// took the call: each core's records go through the log in batches,
	// off the call's path.
	for _, m := range g.cores {
		if _, err := g.client(t, m).Invoke(ctxT(t, 30*time.Second), "demo", "hello", json.RawMessage(`{"name":"sync-`+m.host+`"}`)); err != nil {
			t.Fatalf("a synchronous call through %s: %v", m.host, err)
		}
	}
	for _, m := range g.cores {
		hasSyncRecords(t, g.client(t, m), m.host, g.cores)
	}

	// An asynchronous call queued through a follower runs on the
	// leader, which holds it through the log.
	fcl := g.client(t, follower)
	id, err := fcl.InvokeAsync(ctxT(t, 30*time.Second), "demo", "hello", json.RawMessage(`{"name":"later"}`), "")
	if err != nil {
		t.Fatalf("queue a call through %s: %v", follower.host, err)
	}
	wait.ForState(t, 60*time.Second, "the queued call to finish", func() (bool, string) {
		a, err := fcl.GetActivation(ctxT(t, 10*time.Second), id)
		if err != nil {
			return false, err.Error()
		}
		if a.Final() && (a.Status != "success" || string(a.Result) != `{"message":"Hello, later!"}`) {
			t.Fatalf("queued call: %+v", a)
		}
		return a.Final(), a.Status
	})

	cronOnTheLeaderOnly(t, g, follower)

	// Every core lists the three members, one leader, each with its term
	// and applied index (GET /v1/admin/group, `edgefaas node cores`).
	for _, m := range g.cores {
		var ms []client.GroupMember
		wait.ForState(t, 30*time.Second, "the group's members through "+m.host, func() (bool, string) {
			var err error
			ms, err = g.client(t, m).GroupMembers(ctxT(t, 30*time.Second))
			if err != nil {
				return false, err.Error()
			}
			leaders, applied := 0, 0
			for _, gm := range ms {
				if gm.Role == "leader" {
					leaders++
				}
				if gm.AppliedIndex > 0 && gm.Term > 0 {
					applied++
				}
			}
			return len(ms) == 3 && leaders == 1 && applied == 3, fmt.Sprintf("%+v", ms)
		})
		for _, gm := range ms {
			if gm.Self != (gm.ID == m.groupAddr) || (gm.Role == "leader") != (gm.ID == lead.groupAddr) {
				t.Fatalf("through %s: member %+v (leader %s)", m.host, gm, lead.groupAddr)
			}
		}
	}

	// Without a majority: the last core refuses writes with 503 and
	// Retry-After, and still invokes the functions it holds.
	for _, m := range g.cores {
		if m != follower {
			m.Kill()
		}
	}
	req, err := http.NewRequest(http.MethodPost, follower.url+"/v1/fn", strings.NewReader(`{"module":{"name":"lonely"}}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+g.admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || resp.Header.Get(client.GroupWriteHeader) != client.GroupWriteRefused {
		t.Fatalf("a write without a majority: %d Retry-After=%q %s=%q %s", resp.StatusCode, resp.Header.Get("Retry-After"),
			client.GroupWriteHeader, resp.Header.Get(client.GroupWriteHeader), body)
	}
	t.Logf("a write without a majority: %d Retry-After=%s %s", resp.StatusCode, resp.Header.Get("Retry-After"), bytes.TrimSpace(body))
	for _, fn := range []string{"hello", "hello2"} {
		out, err := g.client(t, follower).Invoke(ctxT(t, 30*time.Second), "demo", fn, json.RawMessage(`{"name":"alone"}`))
		if err != nil || string(out) != `{"message":"Hello, alone!"}` {
			t.Fatalf("%s without a majority: %s %v", fn, out, err)
		}
	}
	// Its records wait for no majority either: kept on this core.
	wait.ForState(t, 30*time.Second, "the record of a call without a majority", func() (bool, string) {
		recs, err := g.client(t, follower).ListActivations(ctxT(t, 30*time.Second), client.ActivationFilter{Module: "demo", Function: "hello2", Limit: 200})
		if err != nil {
			return false, err.Error()
		}
		for _, a := range recs {
			if string(a.Result) == `{"message":"Hello, alone!"}` {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d records, none of the call", len(recs))
	})
}

// hasSyncRecords waits until cl's core lists the record of the hello
// call made through each of cores ({"name":"sync-HOST"}).
func hasSyncRecords(t *testing.T, cl *client.Client, host string, cores []*member) {
	t.Helper()
	wait.ForState(t, 60*time.Second, "the synchronous calls' records through "+host, func() (bool, string) {
		recs, err := cl.ListActivations(ctxT(t, 30*time.Second), client.ActivationFilter{Module: "demo", Function: "hello", Limit: 200})
		if err != nil {
			return false, err.Error()
		}
		seen := map[string]bool{}
		for _, a := range recs {
			seen[string(a.Result)] = !a.Async
		}
		var missing []string
		for _, o := range cores {
			if !seen[`{"message":"Hello, sync-`+o.host+`!"}`] {
				missing = append(missing, o.host)
			}
		}
		return len(missing) == 0, fmt.Sprintf("no record of the call through %v among %d records", missing, len(recs))
	})
}

// cronOnTheLeaderOnly: a cron trigger is a singleton of the group:
// created through a follower, each of its ticks is queued once (by the
// leader, through the log), never once per core, and every core holds
// the ticks' records.
func cronOnTheLeaderOnly(t *testing.T, g *group, follower *member) {
	t.Helper()
	cl := g.client(t, follower)
	no := false
	wait.For(t, 30*time.Second, "module demo on "+follower.host, func() bool {
		_, err := cl.GetModule(ctxT(t, 10*time.Second), "demo")
		return err == nil
	})
	if _, err := cl.CreateFunction(ctxT(t, 60*time.Second), "demo", client.Upload{Name: "tick", Code: testmodules.Read(t, "test/echo"),
		Events: json.RawMessage(`[{"type":"cron","schedule":"@every 1s","args":{"n":7}}]`), WaitForWorkers: &no}); err != nil {
		t.Fatal(err)
	}
	// Records per core, and each tick's activation ids across the cores.
	perCore := func() (map[string]int, map[string]map[string]bool) {
		counts := map[string]int{}
		ticks := map[string]map[string]bool{}
		for _, m := range g.cores {
			rs, err := g.client(t, m).ListActivations(ctxT(t, 10*time.Second), client.ActivationFilter{Module: "demo", Function: "tick", Limit: 1000})
			if err != nil {
				continue
			}
			counts[m.host] = len(rs)
			for _, r := range rs {
				var tr struct {
					Tick *time.Time `json:"tick"`
				}
				if json.Unmarshal(r.Trigger, &tr) == nil && tr.Tick != nil {
					k := tr.Tick.UTC().Format(time.RFC3339Nano)
					if ticks[k] == nil {
						ticks[k] = map[string]bool{}
					}
					ticks[k][r.ID] = true
				}
			}
		}
		return counts, ticks
	}
	wait.ForState(t, 60*time.Second, "5 ticks on every core", func() (bool, string) {
		counts, _ := perCore()
		for _, m := range g.cores {
			if counts[m.host] < 5 {
				return false, fmt.Sprint(counts)
			}
		}
		return true, ""
	})
	counts, ticks := perCore()
	t.Logf("tick records per core: %v", counts)
	for k, ids := range ticks {
		if len(ids) > 1 {
			t.Errorf("tick %s queued %d times", k, len(ids))
		}
	}
}

// TestGroupOfOneRestarts: a core that made a group and stays its only
// member restarts on its data: it leads again, keeps its tokens (the
// tokens file is not rewritten) and takes writes.
func TestGroupOfOneRestarts(t *testing.T) {
	disk := dataDisk(t)
	dir := t.TempDir()
	data := filepath.Join(disk, "core")
	host := "127.0.0.1"
	p := testcluster.Start(t, dir, "core", "--data-dir", data, "--http-addr", host+":"+testcluster.Port(t, host),
		"--node-addr", host+":"+testcluster.Port(t, host), "--group-addr", host+":"+testcluster.Port(t, host))
	url := "http://" + p.WaitLog(testcluster.ListeningRE, 60*time.Second)[1]
	admin, _, err := testcluster.ReadTokens(data)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(url, admin)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.CreateModule(ctxT(t, 30*time.Second), "before"); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	from := p.Process.Log.Len()
	p.Restart()
	if _, err := p.Process.WaitLog(testcluster.ListeningRE, from, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	again, _, err := testcluster.ReadTokens(data)
	if err != nil || again != admin {
		t.Fatalf("the tokens file changed on restart: %v", err)
	}
	wait.ForState(t, 30*time.Second, "a write after the restart", func() (bool, string) {
		err := cl.CreateModule(ctxT(t, 30*time.Second), "after")
		return err == nil || client.IsStatus(err, http.StatusConflict), fmt.Sprint(err)
	})
	if _, err := cl.GetModule(ctxT(t, 10*time.Second), "before"); err != nil {
		t.Fatalf("the module written before the restart: %v", err)
	}
	if n := strings.Count(p.Log(), "first boot of the group"); n != 1 {
		t.Fatalf("first tokens written %d times", n)
	}
}
