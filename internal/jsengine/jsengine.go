// Package jsengine is edgefaas's JavaScript engine: QuickJS and a small
// runner (runner/runner.c) compiled to wasm32-wasi, built from a pinned,
// checksummed source by scripts/build-jsengine.sh and embedded in the
// binary. A JavaScript function is stored as a script in a small container
// (Wrap); workers run it in this one engine module, as a funless-ABI
// guest, under the same sandbox and limits as any other function.
package jsengine

import (
	"bytes"
	"embed"
	"encoding/binary"
	"errors"
	"io/fs"
	"sync"
)

//go:embed all:dist
var dist embed.FS

// ErrUnavailable means this binary was built without the engine.
var ErrUnavailable = errors.New("JavaScript functions are unavailable: this edgefaas was built without its JavaScript engine " +
	"(scripts/build-jsengine.sh needs clang, wasm-ld and wasi-libc, and npm to fetch the QuickJS source)")

// magic starts a stored JavaScript function: it is not Wasm's \0asm, so
// no code is taken for the other.
var magic = []byte("\x00ejs")

// Wrap makes the stored code of a JavaScript function from its source.
func Wrap(source []byte) []byte {
	return append(append(make([]byte, 0, len(magic)+len(source)), magic...), source...)
}

// Source returns the script of stored code made by Wrap, and whether the
// code is one.
func Source(code []byte) ([]byte, bool) {
	if !bytes.HasPrefix(code, magic) {
		return nil, false
	}
	return code[len(magic):], true
}

// Frame is the engine's input for one call: mode 'r' runs the handler on
// args, 'c' only checks the script (runner/runner.c reads it).
func Frame(mode byte, script, args []byte) []byte {
	b := make([]byte, 5, 5+len(script)+len(args))
	b[0] = mode
	binary.LittleEndian.PutUint32(b[1:], uint32(len(script)))
	return append(append(b, script...), args...)
}

var (
	once   sync.Once
	engine []byte
)

// Wasm returns the engine module, or ErrUnavailable.
func Wasm() ([]byte, error) {
	once.Do(func() { engine = load(dist) })
	if engine == nil {
		return nil, ErrUnavailable
	}
	return engine, nil
}

// load reads the engine from fsys; nil if it is not there.
func load(fsys fs.FS) []byte {
	b, err := fs.ReadFile(fsys, "dist/engine.wasm")
	if err != nil || len(b) == 0 {
		return nil
	}
	return b
}

// Available reports whether this binary carries the engine.
func Available() bool {
	_, err := Wasm()
	return err == nil
}
