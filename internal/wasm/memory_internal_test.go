package wasm

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

func rss(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[0] == "VmRSS:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n << 10
		}
	}
	t.Skip("no VmRSS")
	return 0
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// TestLinearMemoryOffHeap: a guest's committed memory is not on the Go
// heap, grows only within its account, and returns to the OS at Free.
func TestLinearMemoryOffHeap(t *testing.T) {
	const size = 64 << 20
	b := &budget{limit: size}
	acct := &account{b: b, reserved: 0}
	l := (&allocator{acct: acct}).Allocate(0, 2*size).(*linearMemory)
	h0, r0 := heapInUse(), rss(t)
	buf := l.Reallocate(size)
	if len(buf) != size {
		t.Fatalf("len %d", len(buf))
	}
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	h1, r1 := heapInUse(), rss(t)
	if r1-r0 < size/2 {
		t.Fatalf("RSS grew by %d after touching %d bytes: not committed?", r1-r0, size)
	}
	if d := int64(h1) - int64(h0); d > size/8 {
		t.Fatalf("the Go heap grew by %d bytes: linear memory is on the heap", d)
	}
	if l.Reallocate(size+PageSize) != nil {
		t.Fatal("grew past its account's budget")
	}
	if d, never, wanted := acct.outcome(); !d || !never || wanted != size+PageSize {
		t.Fatalf("denied %v never %v wanted %d", d, never, wanted)
	}
	if _, used, _ := b.snapshot(); used != size {
		t.Fatalf("budget used %d, want %d", used, size)
	}
	l.Free()
	acct.close()
	if r2 := rss(t); r1-r2 < size/2 {
		t.Fatalf("RSS fell by %d after Free, want about %d", r1-r2, size)
	}
	if _, used, _ := b.snapshot(); used != 0 {
		t.Fatalf("budget used %d after close", used)
	}
}

// TestMovingGrowth: where the whole maximum is not reserved up front (32-bit
// platforms), growing moves the memory and keeps its contents.
func TestMovingGrowth(t *testing.T) {
	l := &linearMemory{max: 64 << 20}
	m, err := newMapping(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	l.m = m
	buf := l.Reallocate(PageSize)
	buf[100] = 42
	buf = l.Reallocate(8 << 20) // beyond the 1 MiB mapping: moves here too
	if buf[100] != 42 || len(buf) != 8<<20 || buf[len(buf)-1] != 0 {
		t.Fatalf("contents lost in a move")
	}
	l.Free()
}

// TestCodeCacheLRU: compiled modules beyond the code budget are closed
// least recently used first, and code that was used recently stays.
func TestCodeCacheLRU(t *testing.T) {
	ctx := context.Background()
	codes := map[string][]byte{}
	for _, n := range []string{"test/echo", "test/outbomb", "test/legacyhttp"} {
		codes[n] = testmodules.Read(t, n)
	}
	a, b, c := codes["test/echo"], codes["test/outbomb"], codes["test/legacyhttp"]
	keep := func(code []byte) int64 { return CodeBytes(len(code)) }
	work := int64(len(c)) * compileBytesPerWasmByte
	// Room for a and c (and c's compilation), not for b as well.
	codeBudget := keep(a) + keep(c) + work + keep(b)/2
	e, err := NewEngine(ctx, Config{MemoryBudget: 2 * codeBudget, CodeBudget: codeBudget})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	for _, code := range [][]byte{a, b} {
		if _, err := e.Compile(ctx, code, Limits{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := e.Lookup(Hash(a), Limits{}); !ok { // a is now more recent than b
		t.Fatal("a missing")
	}
	if _, err := e.Compile(ctx, c, Limits{}); err != nil {
		t.Fatal(err)
	}
	s := e.Stats()
	if _, ok := e.Lookup(Hash(b), Limits{}); ok || s.Modules != 2 || s.CodeEvictions != 1 {
		t.Fatalf("b (least recently used) should be gone: %+v", s)
	}
	if _, ok := e.Lookup(Hash(a), Limits{}); !ok {
		t.Fatal("a (recently used) was evicted")
	}
	if s.CodeBytes != keep(a)+keep(c) || s.MemoryReservedPeak > codeBudget {
		t.Fatalf("code bytes %d, want %d; peak %d > %d", s.CodeBytes, keep(a)+keep(c), s.MemoryReservedPeak, codeBudget)
	}
}

// TestSmallBudgetCompilesWithOneWorker: below a 1 GiB budget a module is
// compiled by one worker (parallel workers hold every compiled body apart
// until all are done); with a large budget or none, by one per CPU; an
// explicit figure stands.
func TestSmallBudgetCompilesWithOneWorker(t *testing.T) {
	for _, c := range []struct {
		budget  int64
		workers int
		want    int
	}{
		{40 << 20, 0, 1},
		{1<<30 - 1, 0, 1},
		{1 << 30, 0, runtime.NumCPU()},
		{0, 0, runtime.NumCPU()},
		{40 << 20, 3, 3},
	} {
		got := Config{MemoryBudget: c.budget, CompilationWorkers: c.workers}.withDefaults().CompilationWorkers
		if got != c.want {
			t.Errorf("budget %d, workers %d: %d compile workers, want %d", c.budget, c.workers, got, c.want)
		}
	}
}
