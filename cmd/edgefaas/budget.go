package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/edgefaas/edgefaas/internal/membudget"
	"github.com/edgefaas/edgefaas/storage"
	"github.com/edgefaas/edgefaas/wasm"
)

// nodeBudget resolves --memory (empty: the cgroup limit, else a share of
// MemAvailable), splits it for role, sets the Go runtime's soft limit
// below what this process may own (unless GOMEMLIMIT is set) and logs the
// result once.
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
	limit, set := membudget.SetGoLimit(split.Process())
	log.Info("memory budget", "budget", membudget.FormatSize(budget.Bytes), "source", string(budget.Source),
		"guests", membudget.FormatSize(split.Guests), "store", membudget.FormatSize(split.Store),
		"validator", membudget.FormatSize(split.Validator), "go_limit", membudget.FormatSize(limit), "go_limit_from_env", !set)
	return budget, split, nil
}

// storageOptions sizes pebble for the core's share of the budget.
func storageOptions(s membudget.Split) storage.Options {
	return storage.Options{CacheBytes: s.PebbleCache(), MemTableBytes: s.PebbleMemTable(), MaxOpenFiles: 256}
}

// boundedInspector runs at most n validations at once (each a child
// process admitted against the core's budget, membudget.ValidatorChild);
// the others wait their turn or give up with their request's context.
func boundedInspector(n int, inspect func(context.Context, []byte) (wasm.ModuleInfo, error)) func(context.Context, []byte) (wasm.ModuleInfo, error) {
	slots := make(chan struct{}, max(n, 1))
	return func(ctx context.Context, code []byte) (wasm.ModuleInfo, error) {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return wasm.ModuleInfo{}, fmt.Errorf("waiting to validate the upload: %w", ctx.Err())
		}
		defer func() { <-slots }()
		return inspect(ctx, code)
	}
}
