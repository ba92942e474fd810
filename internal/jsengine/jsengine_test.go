package jsengine

import (
	"bytes"
	"testing"
	"testing/fstest"
)

// TestWrapSource: the stored form round-trips, is never taken for Wasm,
// and code that is not one is not a script.
func TestWrapSource(t *testing.T) {
	code := Wrap([]byte("function main() {}"))
	if bytes.HasPrefix(code, []byte("\x00asm")) {
		t.Fatal("a wrapped script starts like a Wasm module")
	}
	if src, ok := Source(code); !ok || string(src) != "function main() {}" {
		t.Fatalf("Source(Wrap(x)) = %q, %v", src, ok)
	}
	if _, ok := Source([]byte("\x00asm\x01\x00\x00\x00")); ok {
		t.Fatal("a Wasm module is taken for a script")
	}
}

// TestFrame: the runner's input frame is mode, little-endian length,
// script, args.
func TestFrame(t *testing.T) {
	got := Frame('r', []byte("abc"), []byte("{}"))
	want := []byte{'r', 3, 0, 0, 0, 'a', 'b', 'c', '{', '}'}
	if !bytes.Equal(got, want) {
		t.Fatalf("Frame = %v, want %v", got, want)
	}
}

// TestMissingEngine: a build without dist/engine.wasm has no engine (the
// binary then refuses JavaScript uploads with ErrUnavailable).
func TestMissingEngine(t *testing.T) {
	if load(fstest.MapFS{"dist/README.md": {Data: []byte("x")}}) != nil {
		t.Fatal("an engine was found where there is none")
	}
	if load(fstest.MapFS{"dist/engine.wasm": {Data: []byte{0, 'a', 's', 'm'}}}) == nil {
		t.Fatal("the engine was not found")
	}
}
