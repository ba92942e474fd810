package main

import (
	"fmt"
	"log/slog"

	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/membudget"
)

// nodeBudget resolves --memory (empty: the cgroup limit, else a share of
// MemAvailable), splits it for role, sets the Go runtime's soft limit
// below what the runtime may hold (Split.GoHeap; unless GOMEMLIMIT is set)
// and logs the result once.
func nodeBudget(flag string, role membudget.Role, log *slog.Logger) (membudget.Budget, membudget.Split, error) {
	var want int64
	if flag != "" {
		b, err := membudget.ParseSize(flag)
		if err != nil {
			return membudget.Budget{}, membudget.Split{}, fmt.Errorf("--memory: %w", err)
		}
		want = b
	}
	budget := membudget.Detect(want)
	split := budget.Split(role)
	limit, set := membudget.SetGoLimit(split.GoHeap())
	log.Info("memory budget", "budget", membudget.FormatSize(budget.Bytes), "source", string(budget.Source),
		"guests", membudget.FormatSize(split.Guests), "store", membudget.FormatSize(split.Store),
		"validator", membudget.FormatSize(split.Validator), "code", membudget.FormatSize(split.Code()), "go_limit", membudget.FormatSize(limit), "go_limit_from_env", !set)
	return budget, split, nil
}

// storageOptions sizes pebble for the core's share of the budget.
func storageOptions(s membudget.Split) storage.Options {
	return storage.Options{CacheBytes: s.PebbleCache(), MemTableBytes: s.PebbleMemTable(), MaxOpenFiles: 256}
}

// bodyBudget is what the core's request bodies held at once may take:
// half of the budget's machinery share (the HTTP server and its buffers
// are part of it), which the API raises to the largest invocation body.
func bodyBudget(s membudget.Split) int64 {
	return s.Machinery / 2
}
