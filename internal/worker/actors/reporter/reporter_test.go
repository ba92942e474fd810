package reporter

import (
	"context"
	"log/slog"
	"testing"

	"github.com/edgefaas/edgefaas/internal/wasm"
	"github.com/edgefaas/edgefaas/internal/worker/actors/cache"
	"github.com/edgefaas/edgefaas/internal/worker/actors/runner"
)

// TestReportMemory: a report carries the node's budget, its resident set
// and the reservations, and offers functions no more than what is left of
// the guests' share nor more than what the resident set leaves of the
// budget.
func TestReportMemory(t *testing.T) {
	e, st := newEngineAndStore(t)
	const mib = 1 << 20
	usage := &runner.Usage{}
	rss := int64(40 * mib)
	a := &Actor{Engine: e, Store: st, Usage: usage, Node: "w", Log: slog.Default(),
		Budget: 128 * mib, GuestMemory: 64 * mib, RSS: func() (int64, error) { return rss, nil }}
	usage.Reserved.Store(16 * mib)
	r := a.Report()
	if r.MemoryBudget != 128*mib || r.MemoryInUse != 40*mib || r.TotalMemory != 64*mib {
		t.Fatalf("report: budget %d, in use %d, guests %d", r.MemoryBudget, r.MemoryInUse, r.TotalMemory)
	}
	if e.Stats().MemoryBudget == 0 && (r.MemoryReserved != 16*mib || r.FreeMemory != 48*mib) {
		t.Errorf("reserved %d, free %d; want 16 MiB reserved, 48 MiB free", r.MemoryReserved, r.FreeMemory)
	}
	rss = 100 * mib // resident set near the budget: only what it leaves is free
	if r := a.Report(); r.FreeMemory != 28*mib {
		t.Errorf("with 100 MiB resident of 128, free %d, want 28 MiB", r.FreeMemory)
	}
	rss = 200 * mib
	if r := a.Report(); r.FreeMemory != 0 {
		t.Errorf("over budget, free %d, want 0", r.FreeMemory)
	}
}

// TestReportLargeMemoryOn32Bit: on a 32-bit worker (arm on a Raspberry
// Pi with a 32-bit OS) a budget of several GiB does not wrap to a
// negative size that no placement would ever choose: sizes beyond the
// platform's int are reported as its largest.
func TestReportLargeMemoryOn32Bit(t *testing.T) {
	e, st := newEngineAndStore(t)
	const gib = int64(1) << 30
	a := &Actor{Engine: e, Store: st, Usage: &runner.Usage{}, Node: "w", Log: slog.Default(),
		Budget: 23 * gib, GuestMemory: 12 * gib, RSS: func() (int64, error) { return 5 * gib, nil }}
	r := a.Report()
	for name, v := range map[string]int{"TotalMemory": r.TotalMemory, "FreeMemory": r.FreeMemory,
		"MemoryBudget": r.MemoryBudget, "MemoryInUse": r.MemoryInUse} {
		if v <= 0 {
			t.Errorf("%s = %d for a %d GiB budget", name, v, a.Budget/gib)
		}
	}
}

// newEngineAndStore is an interpreter engine and an in-memory code store
// for a reporter, closed with the test.
func newEngineAndStore(t *testing.T) (*wasm.Engine, *cache.Store) {
	t.Helper()
	ctx := context.Background()
	e, err := wasm.NewEngine(ctx, wasm.Config{Interpreter: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctx) })
	st, err := cache.NewStore(e, "", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e, st
}
