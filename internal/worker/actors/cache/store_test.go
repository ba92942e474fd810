package cache_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/wasm"
	"github.com/edgefaas/edgefaas/internal/worker/actors/cache"
)

// TestPushWithinBudget: code pushed ahead of demand is kept on disk and
// compiled only when it fits in the code budget; a push a core waits for
// is compiled anyway; code not compiled (or evicted from memory) is
// compiled from disk on first demand and runs.
func TestPushWithinBudget(t *testing.T) {
	ctx := context.Background()
	echo := testmodules.Read(t, "test/echo")
	outbomb := testmodules.Read(t, "test/outbomb")
	legacy := testmodules.Read(t, "test/legacyhttp")
	// Room to compile echo, not echo and another module as well.
	codeBudget := wasm.CodeBytes(len(echo)) + wasm.CodeBytes(len(legacy))/2 + int64(len(legacy))*wasm.CodeBytesPerWasmByte
	dir := t.TempDir()
	e, err := wasm.NewEngine(ctx, wasm.Config{MemoryBudget: 64 << 20, CodeBudget: codeBudget, CacheDir: filepath.Join(dir, "compiled")})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	changes := 0
	s, err := cache.NewStore(e, filepath.Join(dir, "code"), 0, func() { changes++ })
	if err != nil {
		t.Fatal(err)
	}
	if compiled, err := s.Push(ctx, echo, wasm.Limits{}, false); err != nil || !compiled {
		t.Fatalf("echo fits but compiled=%v err=%v", compiled, err)
	}
	if compiled, err := s.Push(ctx, legacy, wasm.Limits{}, false); err != nil || compiled {
		t.Fatalf("legacyhttp does not fit beside echo but compiled=%v err=%v", compiled, err)
	}
	if e.Has(wasm.Hash(legacy)) || !e.Has(wasm.Hash(echo)) {
		t.Fatal("the engine holds the wrong modules")
	}
	if _, err := os.Stat(filepath.Join(dir, "code", wasm.Hash(legacy)+".wasm")); err != nil {
		t.Fatalf("pushed code not on disk: %v", err)
	}
	if h := s.Hashes(); !slices.Contains(h, wasm.Hash(legacy)) || !slices.Contains(h, wasm.Hash(echo)) || changes != 2 || len(h) != 2 {
		t.Fatalf("hashes %v, %d changes", h, changes)
	}
	// A push a core waits for compiles even when it does not fit: the
	// engine closes echo (unused) to make room.
	if compiled, err := s.Push(ctx, legacy, wasm.Limits{}, true); err != nil || !compiled {
		t.Fatalf("legacyhttp must compile: compiled=%v err=%v", compiled, err)
	}
	if e.Has(wasm.Hash(echo)) || !e.Has(wasm.Hash(legacy)) {
		t.Fatal("echo should have been closed for room")
	}
	if compiled, err := s.Push(ctx, outbomb, wasm.Limits{}, false); err != nil || compiled {
		t.Fatalf("outbomb does not fit beside legacyhttp but compiled=%v err=%v", compiled, err)
	}
	// First demand: compiled from disk, and it runs.
	for _, code := range [][]byte{outbomb, echo} {
		m, err := s.Get(ctx, wasm.Hash(code), wasm.Limits{})
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if !e.Has(m.Hash) {
			t.Fatal("not compiled on demand")
		}
	}
	m, _ := s.Get(ctx, wasm.Hash(echo), wasm.Limits{})
	res, err := e.Invoke(ctx, m, wasm.Invocation{Function: "t/echo", Input: []byte(`"hi"`)})
	if err != nil || string(res.Output) != `"hi"` {
		t.Fatalf("echo after recompiling from disk: %v %v", res, err)
	}
	if st := e.Stats(); st.MemoryReservedPeak > 64<<20 || st.CodeBytes > codeBudget {
		t.Fatalf("stats %+v", st)
	}
}
