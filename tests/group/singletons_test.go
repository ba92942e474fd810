package group_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestQueuedCallsSurviveLeaderKill: asynchronous calls queued through
// every core are committed through the group's log before they are
// acknowledged, so kill -9 of the leader loses none: with no worker
// attached yet, calls wait queued; the leader is killed with some of
// them queued through it; once a worker joins the survivors, every
// acknowledged call finishes and its record is readable on both
// survivors.
func TestQueuedCallsSurviveLeaderKill(t *testing.T) {
	g := startGroup(t)
	lead := g.leader(t, nil)
	no := false
	setUp(t, g.client(t, lead), client.Upload{Name: "hello", Code: testmodules.Read(t, "hello"), WaitForWorkers: &no})
	for _, m := range g.cores {
		cl := g.client(t, m)
		wait.For(t, 30*time.Second, "hello on "+m.host, func() bool {
			_, err := cl.GetFunction(ctxT(t, 10*time.Second), "demo", "hello")
			return err == nil
		})
	}
	const perCore = 4
	acked := map[string]string{} // activation id → the core that acknowledged it
	enqueue := func(m *member, i int) {
		t.Helper()
		cl := g.client(t, m)
		wait.ForState(t, 30*time.Second, "a call queued through "+m.host, func() (bool, string) {
			id, err := cl.InvokeAsync(ctxT(t, 30*time.Second), "demo", "hello", json.RawMessage(fmt.Sprintf(`{"name":"q%d"}`, i)), "")
			if err != nil {
				return false, err.Error()
			}
			acked[id] = m.host
			return true, ""
		})
	}
	n := 0
	for i := 0; i < perCore; i++ {
		for _, m := range g.cores {
			enqueue(m, n)
			n++
		}
	}
	lead.Kill()
	dead := map[*member]bool{lead: true}
	var live []*member
	for _, m := range g.cores {
		if !dead[m] {
			live = append(live, m)
		}
	}
	for i := 0; i < perCore; i++ {
		for _, m := range live {
			enqueue(m, n)
			n++
		}
	}
	g.startWorkerOn(t, "127.0.0.4", live)
	for _, m := range live {
		cl := g.client(t, m)
		wait.ForState(t, 90*time.Second, "every acknowledged call finished, read on "+m.host, func() (bool, string) {
			var waiting []string
			for id, by := range acked {
				a, err := cl.GetActivation(ctxT(t, 10*time.Second), id)
				switch {
				case err != nil:
					waiting = append(waiting, fmt.Sprintf("%s (via %s): %v", id, by, err))
				case !a.Final():
					waiting = append(waiting, fmt.Sprintf("%s (via %s): %s", id, by, a.Status))
				case a.Status != "success":
					t.Fatalf("%s (via %s) on %s: %+v", id, by, m.host, a)
				}
			}
			sort.Strings(waiting)
			return len(waiting) == 0, fmt.Sprintf("%d of %d not finished: %v", len(waiting), len(acked), waiting)
		})
	}
	t.Logf("%d calls acknowledged (%d through the killed leader %s), all finished on both survivors", len(acked), perCore, lead.host)
}

// TestCronTicksThroughLeaderKill: a cron trigger's ticks are committed
// through the group's log before they run, so the leader that follows a
// killed one resumes from the replicated last tick: every tick is queued
// at most once across the group, the ticks the old leader queued are
// readable on the survivors, a tick missed during the election is
// counted in the next run's missed, and ticks go on after the kill.
func TestCronTicksThroughLeaderKill(t *testing.T) {
	g := startGroup(t)
	g.startWorker(t, "127.0.0.4")
	lead := g.leader(t, nil)
	cl := g.client(t, lead)
	no := false
	setUp(t, cl, client.Upload{Name: "tick", Code: testmodules.Read(t, "test/echo"),
		Events: json.RawMessage(`[{"type":"cron","schedule":"@every 1s","args":{"n":7}}]`), WaitForWorkers: &no})
	type tick struct {
		at     time.Time
		missed int
		ids    map[string]bool
	}
	// ticks lists the tick records the cores hold, by tick, each
	// activation counted once however many cores hold it.
	ticks := func(cores []*member) map[string]*tick {
		out := map[string]*tick{}
		for _, m := range cores {
			rs, err := g.client(t, m).ListActivations(ctxT(t, 10*time.Second), client.ActivationFilter{Module: "demo", Function: "tick", Limit: 1000})
			if err != nil {
				continue
			}
			for _, r := range rs {
				var tr struct {
					Tick   *time.Time `json:"tick"`
					Missed int        `json:"missed"`
				}
				if json.Unmarshal(r.Trigger, &tr) != nil || tr.Tick == nil {
					continue
				}
				k := tr.Tick.UTC().Format(time.RFC3339Nano)
				if out[k] == nil {
					out[k] = &tick{at: tr.Tick.UTC(), missed: tr.Missed, ids: map[string]bool{}}
				}
				out[k].ids[r.ID] = true
			}
		}
		return out
	}
	var before map[string]*tick
	wait.ForState(t, 60*time.Second, "3 ticks queued by the leader", func() (bool, string) {
		before = ticks([]*member{lead})
		return len(before) >= 3, fmt.Sprint(len(before))
	})
	lead.Kill()
	killedAt := time.Now().UTC()
	var live []*member
	for _, m := range g.cores {
		if m != lead {
			live = append(live, m)
		}
	}
	var after map[string]*tick
	wait.ForState(t, 60*time.Second, "3 ticks after the kill on the survivors", func() (bool, string) {
		after = ticks(live)
		n := 0
		for _, tk := range after {
			if tk.at.After(killedAt) {
				n++
			}
		}
		return n >= 3, fmt.Sprintf("%d ticks after the kill, %d in all", n, len(after))
	})
	for k := range before {
		if after[k] == nil {
			t.Errorf("tick %s queued by the killed leader is not on the survivors", k)
		}
	}
	var order []*tick
	for k, tk := range after {
		if len(tk.ids) > 1 {
			t.Errorf("tick %s queued %d times", k, len(tk.ids))
		}
		order = append(order, tk)
	}
	sort.Slice(order, func(a, b int) bool { return order[a].at.Before(order[b].at) })
	missedAll := 0
	for i := 1; i < len(order); i++ {
		gap := int(order[i].at.Sub(order[i-1].at).Round(time.Second) / time.Second)
		missedAll += order[i].missed
		if order[i].missed != gap-1 {
			t.Errorf("tick %s follows %s: %d ticks between them, %d counted missed", order[i].at.Format(time.RFC3339), order[i-1].at.Format(time.RFC3339), gap-1, order[i].missed)
		}
	}
	t.Logf("%d ticks queued before the kill of %s, %d on the survivors after it (%d counted missed)", len(before), lead.host, len(after), missedAll)
}

// setUp creates module demo and the function up in it through cl, again
// while the group answers 503 (an election under a loaded machine's
// missed heartbeats); a write whose outcome was unknown may be there.
func setUp(t *testing.T, cl *client.Client, up client.Upload) {
	t.Helper()
	wait.ForState(t, 120*time.Second, "module demo created", func() (bool, string) {
		err := cl.CreateModule(ctxT(t, 30*time.Second), "demo")
		return err == nil || client.IsStatus(err, http.StatusConflict), fmt.Sprint(err)
	})
	wait.ForState(t, 120*time.Second, "function "+up.Name+" created", func() (bool, string) {
		_, err := cl.CreateFunction(ctxT(t, 60*time.Second), "demo", up)
		return err == nil || client.IsStatus(err, http.StatusConflict), fmt.Sprint(err)
	})
}
