package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// The limits every worker enforces (wasm.DefaultMaxima, which no flag
// changes): metadata beyond them used to be accepted at upload and then
// failed every invocation with 500, so the API refuses it with 400.
var (
	// maxTimeoutMS is the longest timeout_ms a worker runs (15 min).
	maxTimeoutMS = wasm.DefaultMaxima.Timeout.Milliseconds()
	// maxCapacityMiB is the largest capacity, in MiB: the workers' memory
	// maximum (1 GiB). It also keeps capacity × 16 pages far from overflow.
	maxCapacityMiB = int64(wasm.DefaultMaxima.MemoryPages) * wasm.PageSize >> 20
)

// memoryPages is the memory limit a function runs with: capacity MiB
// (16 pages per MiB), or the workers' default when capacity is 0 or -1.
func memoryPages(md storage.Metadata) int64 {
	if md.Capacity > 0 {
		return md.Capacity * (1 << 20 / wasm.PageSize)
	}
	return int64(wasm.DefaultLimits.MemoryPages)
}

// checkMemory refuses a capacity below the module's own declared minimum
// memory: such a function can never be instantiated.
func checkMemory(md storage.Metadata, info wasm.ModuleInfo) error {
	pages := memoryPages(md)
	if int64(info.MinMemoryPages) <= pages {
		return nil
	}
	needMiB := (int64(info.MinMemoryPages)*wasm.PageSize + 1<<20 - 1) >> 20
	if md.Capacity > 0 {
		return errorf(http.StatusBadRequest, "Bad Request: metadata: capacity %d MiB is the function's memory limit (%d pages), but the module declares a minimum memory of %d pages; set capacity to at least %d",
			md.Capacity, pages, info.MinMemoryPages, needMiB)
	}
	return errorf(http.StatusBadRequest, "Bad Request: the module declares a minimum memory of %d pages, above the default memory limit of %d pages; set capacity to at least %d (MiB, at most %d)",
		info.MinMemoryPages, pages, needMiB, maxCapacityMiB)
}

// checkStoredMemory runs checkMemory for a metadata-only update, against
// the function's stored code.
func (s *Server) checkStoredMemory(ctx context.Context, f storage.Function, md storage.Metadata) error {
	code, err := s.cfg.Store.Code(f.Hash)
	if err != nil {
		return fmt.Errorf("code of %s/%s: %w", f.Module, f.Name, err)
	}
	info, err := s.inspect(ctx, code)
	if err != nil {
		return err
	}
	return checkMemory(md, info)
}

// Server timeouts. A request's body must arrive within readTimeout (an
// upload of 64 MiB at 1 Mbit/s takes under 9 minutes); the whole exchange,
// from the end of its headers to the last byte of the answer, within
// writeTimeout, which must outlast the longest invocation: the function's
// maximum timeout plus the core's 10 s grace for a lost reply.
const (
	readTimeout  = 10 * time.Minute
	writeTimeout = 15*time.Minute + time.Minute
	// jsonBodyTimeout is what a small JSON body (at most maxJSONBodyBytes,
	// 64 KiB: 17 kbit/s) has to arrive once its handler reads it.
	jsonBodyTimeout = 30 * time.Second
)
