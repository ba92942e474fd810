package scheduler

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/edgefaas/edgefaas/internal/actors/wire"
	"github.com/edgefaas/edgefaas/internal/core/app"
)

func report(node string, free, running, max int, tags []string, cached ...string) wire.Report {
	return wire.Report{Node: node, FreeMemory: free, TotalMemory: free, Running: running, MaxRunning: max,
		Tags: wire.JoinList(tags), Cached: wire.JoinList(cached)}
}

func TestPick(t *testing.T) {
	tab := NewTable()
	tab.Update(report("a", 1<<30, 0, 10, nil))
	tab.Update(report("b", 1<<30, 5, 10, nil, "h1"))
	c := report("c", 64<<20, 0, 10, []string{"gpu"}, "h2")
	c.Arch, c.OS = "arm64", "linux"
	tab.Update(c)
	for _, tc := range []struct {
		name     string
		need     Need
		want     string
		cached   bool
		noWorker bool
	}{
		{"prefers the worker with the code, though busier", Need{Hash: "h1"}, "b", true, false},
		{"else the least loaded, ties by most free memory", Need{Hash: "zz"}, "a", false, false},
		{"memory filter", Need{Hash: "h2", MemoryBytes: 128 << 20}, "a", false, false},
		{"tag pins", Need{Hash: "h1", Tag: "gpu"}, "c", false, false},
		{"unknown tag: no worker", Need{Tag: "tpu"}, "", false, true},
		{"arch pins to the reported architecture", Need{Hash: "h1", Tag: "arch:arm64"}, "c", false, false},
		{"no worker of that arch", Need{Tag: "arch:riscv64"}, "", false, true},
		{"exclude", Need{Hash: "h1", Exclude: map[string]bool{"b": true}}, "a", false, false},
		{"too much memory for anyone", Need{MemoryBytes: 2 << 30}, "", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, cached, ok := tab.Pick(tc.need)
			if ok == tc.noWorker || got != tc.want || cached != tc.cached {
				t.Fatalf("Pick = %q cached=%v ok=%v, want %q cached=%v ok=%v", got, cached, ok, tc.want, tc.cached, !tc.noWorker)
			}
		})
	}
	// A worker whose share holds the function but whose free memory is
	// spent now is still chosen when no other fits: its engine queues the call.
	short := report("d", 0, 0, 10, nil)
	short.TotalMemory = 256 << 20
	solo := NewTable()
	solo.Update(short)
	if got, _, ok := solo.Pick(Need{MemoryBytes: 128 << 20}); !ok || got != "d" {
		t.Fatalf("short worker: Pick = %q, %v", got, ok)
	}
	if _, _, ok := solo.Pick(Need{MemoryBytes: 512 << 20}); ok {
		t.Fatal("a function larger than the worker's whole share was placed")
	}
	// In-flight invocations from this core count as load before the next report.
	for range 20 {
		tab.Started("a")
	}
	if got, _, _ := tab.Pick(Need{Hash: "zz"}); got != "c" {
		t.Fatalf("with a loaded by this core, picked %q", got)
	}
	if !tab.Remove("a") || tab.Remove("a") || tab.Len() != 2 {
		t.Fatal("Remove")
	}
}

// TestPlaceScript: Place with an APP script counts each placed call in
// flight before the next placement looks, so max_concurrent_invocations
// holds for concurrent callers, and the calls' tags feed affinity.
func TestPlaceScript(t *testing.T) {
	tab := NewTable()
	tab.Update(report("a", 1<<30, 0, 10, nil))
	tab.Update(report("b", 1<<30, 0, 10, nil))
	s, err := app.Parse([]byte(`
- t:
  - workers: [a]
    invalidate: {max_concurrent_invocations: 3}
  - workers: [b]
    invalidate: {max_concurrent_invocations: 2}
  followup: fail
- near:
  - workers: "*"
    affinity: [t]
    strategy: platform
`))
	if err != nil {
		t.Fatal(err)
	}
	const callers = 8
	var mu sync.Mutex
	got := map[string]int{}
	var refused atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node, ok, err := tab.Place(Need{Tag: "t", Script: s})
			if errors.Is(err, app.ErrNoValidWorkers) {
				refused.Add(1)
				return
			}
			if err != nil || !ok {
				t.Errorf("Place = %q %v %v", node, ok, err)
				return
			}
			mu.Lock()
			got[node]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if got["a"] != 3 || got["b"] != 2 || refused.Load() != callers-5 {
		t.Fatalf("placed %v, refused %d; want a:3 b:2, refused %d", got, refused.Load(), callers-5)
	}
	// Affinity: "near" runs beside a call of tag t, and only there.
	for range 3 {
		tab.Finish("a", "t")
	}
	if node, ok, err := tab.Place(Need{Tag: "near", Script: s}); err != nil || !ok || node != "b" {
		t.Fatalf("affinity: Place = %q %v %v, want b", node, ok, err)
	}
	// Without a script, Place is Pick and counts the call.
	before := tab.Workers()
	node, ok, err := tab.Place(Need{})
	if err != nil || !ok {
		t.Fatal(node, ok, err)
	}
	for _, w := range tab.Workers() {
		for _, b := range before {
			if w.Node == b.Node && w.Node == node && w.InFlight != b.InFlight+1 {
				t.Fatalf("in flight on %s: %d → %d", node, b.InFlight, w.InFlight)
			}
		}
	}
}

// BenchmarkPlace compares a placement by the platform policy with one by
// an APP script (snapshot, Select, count), 8 workers.
func BenchmarkPlace(b *testing.B) {
	tab := NewTable()
	for i := range 8 {
		tab.Update(report(string(rune('a'+i)), 1<<30, 0, 64, nil))
	}
	s, err := app.Parse([]byte("- t:\n  - workers: [a, b, c]\n    strategy: random\n    invalidate: {max_concurrent_invocations: 1000000, capacity_used: 90%}\n  followup: default\n"))
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		need Need
	}{{"platform", Need{Tag: ""}}, {"script", Need{Tag: "t", Script: s}}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				node, _, _ := tab.Place(bc.need)
				tab.Finish(node, bc.need.Tag)
			}
		})
	}
}
