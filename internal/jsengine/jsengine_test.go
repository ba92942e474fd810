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

// TestCompiled: the stored form with bytecode round-trips its parts, its
// source is the script's, and one cut short is an error, not a script.
func TestCompiled(t *testing.T) {
	id := [IDSize]byte{1, 2, 3, 4, 5, 6, 7, 8}
	code := Compiled(id, []byte("src"), []byte{9, 9})
	s, ok, err := Parse(code)
	if !ok || err != nil || string(s.Source) != "src" || !bytes.Equal(s.Bytecode, []byte{9, 9}) || s.Engine != id || !IsCompiled(code) {
		t.Fatalf("Parse(Compiled) = %+v, %v, %v", s, ok, err)
	}
	if src, ok := Source(code); !ok || string(src) != "src" {
		t.Fatalf("Source(Compiled) = %q, %v", src, ok)
	}
	for _, n := range []int{5, len(code) - 3} {
		if _, ok, err := Parse(code[:n]); !ok || err == nil {
			t.Fatalf("Parse of %d bytes: %v, %v; want an error", n, ok, err)
		}
	}
	if IsCompiled(Wrap([]byte("x"))) {
		t.Fatal("a wrapped script is taken for a compiled one")
	}
}
