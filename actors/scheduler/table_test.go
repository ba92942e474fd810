package scheduler

import (
	"testing"

	"github.com/edgefaas/edgefaas/actors/wire"
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
