package wasm

import (
	"bytes"
	"context"
	"runtime"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

// image is the memory a module's active data segments leave.
func image(segs []segment) []byte {
	var out []byte
	for _, s := range segs {
		if end := int(s.offset) + len(s.init); end > len(out) {
			out = append(out, make([]byte, end-len(out))...)
		}
		copy(out[s.offset:], s.init)
	}
	return out
}

// TestSplitData: the Go hello's data section is taken out whole (wazero
// compiles the rest) and its image is the memory the segments leave; a
// module whose data an image cannot stand for is left as it is.
func TestSplitData(t *testing.T) {
	code := testmodules.Read(t, "hello")
	rest, segs := splitData(code)
	t.Logf("%d bytes of wasm: %d without the data section, %d segments", len(code), len(rest), len(segs))
	if len(segs) < 1000 || len(activeSegments(rest)) != 0 || len(rest) >= len(code) {
		t.Fatalf("%d segments split off; %d left in the module", len(segs), len(activeSegments(rest)))
	}
	if !bytes.Equal(image(segs), image(activeSegments(code))) {
		t.Error("the split segments leave another memory")
	}
	img, err := newDataImage(t.TempDir(), segs)
	if err != nil {
		t.Fatal(err)
	}
	defer img.close()
	mem := make([]byte, img.len())
	if err := img.readInto(mem, 0); err != nil || !bytes.HasPrefix(mem, image(segs)) || img.len()%imagePage != 0 {
		t.Errorf("image of %d bytes read back: %v", img.len(), err)
	}
	r := wazero.NewRuntimeWithConfig(context.Background(), wazero.NewRuntimeConfigInterpreter())
	defer r.Close(context.Background())
	if _, err := r.CompileModule(context.Background(), rest); err != nil {
		t.Errorf("the module without its data: %v", err)
	}

	big := bytes.Repeat([]byte{7}, minImageBytes)
	module := func(memory, data string) []byte {
		return []byte("\x00asm\x01\x00\x00\x00" + memory + data)
	}
	dataSection := func(offset string, seg []byte) string {
		body := "\x01\x00\x41" + offset + "\x0b" + string(uleb(len(seg))) + string(seg)
		return "\x0b" + string(uleb(len(body))) + body
	}
	for _, tc := range []struct {
		name  string
		code  []byte
		split bool
	}{
		{"fits", module("\x05\x03\x01\x00\x02", dataSection("\x00", big)), true},
		{"past the minimum", module("\x05\x03\x01\x00\x01", dataSection("\x01", big)), false},
		{"little data", module("\x05\x03\x01\x00\x01", dataSection("\x00", big[:100])), false},
		{"shared memory", module("\x05\x04\x01\x03\x02\x02", dataSection("\x00", big)), false},
		{"no memory section", module("", dataSection("\x00", big)), false},
	} {
		rest, segs := splitData(tc.code)
		if (segs != nil) != tc.split || (segs == nil && !bytes.Equal(rest, tc.code)) {
			t.Errorf("%s: %d segments split off, %d of %d bytes left", tc.name, len(segs), len(rest), len(tc.code))
		}
	}
}

func uleb(n int) []byte {
	var b []byte
	for {
		c := byte(n & 0x7f)
		n >>= 7
		if n == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// TestCompiledGoModuleHeap: a compiled Go module keeps less of the Go heap
// than its wasm's size. Wazero's decoded module stays as long as the
// compiled one; its function bodies (dropped once compiled, patch 0302)
// and its data segments (taken out into the data image) were most of it:
// the Go hello's 3.2 MB kept 6.1 MB of live heap, now 0.7. Counted by the Go
// runtime after a collection, with the module and after evicting it.
func TestCompiledGoModuleHeap(t *testing.T) {
	code := testmodules.Read(t, "hello")
	ctx := context.Background()
	e, err := NewEngine(ctx, Config{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	live := func() uint64 {
		runtime.GC() // twice: sync.Pools keep their items one cycle more
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	m, err := e.Compile(ctx, code, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	with := live()
	e.Evict(ctx, m.Hash)
	kept := int64(with) - int64(live())
	t.Logf("%d bytes of wasm: %d bytes of live Go heap kept by the compiled module", len(code), kept)
	if kept >= int64(len(code)) {
		t.Errorf("the compiled module keeps %d bytes of Go heap, its wasm is %d", kept, len(code))
	}
}
