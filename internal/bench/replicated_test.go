package bench

import (
	"testing"
	"time"
)

// TestReplicatedGoals: each goal is judged on the worse of the group's
// leader and follower against the single core, in the direction the goal
// reads (an upload's time is worse higher, a rate lower).
func TestReplicatedGoals(t *testing.T) {
	rc := &ReplicatedCore{
		Rows: []GroupRow{
			{Target: "single core", UploadP50: 10_000, EnqueueRPS: 1000, InvokeRPS: 1000},
			{Target: "group, leader", UploadP50: 15_000, EnqueueRPS: 900, InvokeRPS: 950},
			{Target: "group, follower", UploadP50: 25_000, EnqueueRPS: 400, InvokeRPS: 1100},
		},
		Memory:   GroupMemory{SingleMiB: 60, MembersMiB: []float64{70, 80, 65}},
		Failover: Failover{FirstWrite: 2 * time.Second, Calls: 500},
	}
	want := map[string]struct {
		value string
		met   bool
	}{
		"kill -9 of the leader → first write acknowledged by a survivor":      {"2.00 s", true},
		"synchronous calls through the survivors that failed":                 {"0 of 500", true},
		"upload p50, group ÷ single core":                                     {"2.50×", false},
		"enqueue req/s, group ÷ single core":                                  {"0.40×", false},
		"C hello at 16 connections, group member ÷ single core":               {"0.95×", true},
		"core peak RSS in the memory run, largest group member ÷ single core": {"1.33×", false},
	}
	got := rc.goals()
	if len(got) != len(want) {
		t.Fatalf("%d goals, want %d: %+v", len(got), len(want), got)
	}
	for _, g := range got {
		w, ok := want[g.figure]
		if !ok || g.value != w.value || g.met != w.met {
			t.Errorf("goal %q: %s met=%v, want %s met=%v", g.figure, g.value, g.met, w.value, w.met)
		}
	}

	// No write after the kill, or a call that failed, misses its goal.
	rc.Failover = Failover{Calls: 500, CallErrors: 1}
	for _, g := range rc.goals()[:2] {
		if g.met {
			t.Errorf("goal %q met with %+v", g.figure, rc.Failover)
		}
	}
}
