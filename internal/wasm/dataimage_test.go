package wasm

import (
	"bytes"
	"context"
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

// TestCoalesceData: the Go hello's tens of thousands of data segments
// become a few, which leave the same memory, and wazero compiles the
// rewritten module. A module whose segments overlap is left alone.
func TestCoalesceData(t *testing.T) {
	code := testmodules.Read(t, "hello")
	before := activeSegments(code)
	merged := coalesceData(code)
	after := activeSegments(merged)
	t.Logf("%d segments (%d bytes of wasm) → %d (%d bytes)", len(before), len(code), len(after), len(merged))
	if len(before) < 1000 || len(after) > len(before)/100 {
		t.Errorf("%d segments became %d", len(before), len(after))
	}
	if !bytes.Equal(image(before), image(after)) {
		t.Error("the merged segments leave another memory")
	}
	r := wazero.NewRuntimeWithConfig(context.Background(), wazero.NewRuntimeConfigInterpreter())
	defer r.Close(context.Background())
	if _, err := r.CompileModule(context.Background(), merged); err != nil {
		t.Errorf("the rewritten module: %v", err)
	}

	// Two segments over the same bytes: their order matters, no rewrite.
	overlap := []byte("\x00asm\x01\x00\x00\x00" +
		"\x05\x03\x01\x00\x01" + // memory 0: 1 page
		"\x0b\x0f\x02" + // data: 2 segments
		"\x00\x41\x00\x0b\x02ab" +
		"\x00\x41\x01\x0b\x02cd")
	if got := coalesceData(overlap); !bytes.Equal(got, overlap) {
		t.Errorf("overlapping segments rewritten: %x", got)
	}
	if segs := activeSegments(overlap); len(segs) != 2 || string(image(segs)) != "acd" {
		t.Errorf("segments read: %+v", segs)
	}
}
