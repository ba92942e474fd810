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

// TestReopenedStoreKnowsItsCode: a worker restarted on its data directory
// lists the code it kept on disk (so the core places calls on it again
// without pushing the code), drops a torn temporary file and a file whose
// name is not a hash, and still honours its byte budget.
func TestReopenedStoreKnowsItsCode(t *testing.T) {
	ctx := context.Background()
	echo := testmodules.Read(t, "test/echo")
	legacy := testmodules.Read(t, "test/legacyhttp")
	dir := t.TempDir()
	codeDir := filepath.Join(dir, "code")
	e, err := wasm.NewEngine(ctx, wasm.Config{Interpreter: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	s, err := cache.NewStore(e, codeDir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range [][]byte{echo, legacy} {
		if _, err := s.Push(ctx, code, wasm.Limits{}, false); err != nil {
			t.Fatal(err)
		}
	}
	torn := filepath.Join(codeDir, wasm.Hash(echo)[:10]+"0.wasm.tmp")
	stray := filepath.Join(codeDir, "notes.txt")
	for _, f := range []string{torn, stray} {
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	// The process restarts: a new engine and store on the same directory.
	e2, err := wasm.NewEngine(ctx, wasm.Config{Interpreter: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e2.Close(ctx)
	s2, err := cache.NewStore(e2, codeDir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{wasm.Hash(echo), wasm.Hash(legacy)}
	slices.Sort(want)
	if got := s2.Hashes(); !slices.Equal(got, want) {
		t.Fatalf("reopened store lists %v, want %v", got, want)
	}
	if _, err := os.Stat(torn); !os.IsNotExist(err) {
		t.Fatalf("torn temporary file kept: %v", err)
	}
	m, err := s2.Get(ctx, wasm.Hash(echo), wasm.Limits{})
	if err != nil {
		t.Fatalf("get after reopening: %v", err)
	}
	if res, err := e2.Invoke(ctx, m, wasm.Invocation{Function: "t/echo", Input: []byte(`"again"`)}); err != nil || string(res.Output) != `"again"` {
		t.Fatalf("echo after reopening: %v %v", res, err)
	}

	// Reopened with a budget that holds one of them: the other is dropped.
	e3, err := wasm.NewEngine(ctx, wasm.Config{Interpreter: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e3.Close(ctx)
	s3, err := cache.NewStore(e3, codeDir, max(len(echo), len(legacy)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s3.Hashes(); len(got) != 1 {
		t.Fatalf("reopened within a one-module budget lists %v", got)
	}
	files, _ := filepath.Glob(filepath.Join(codeDir, "*.wasm"))
	if len(files) != 1 {
		t.Fatalf("files left beyond the budget: %v", files)
	}
}
