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
