// Package jsengine is edgefaas's JavaScript engine: QuickJS and a small
// runner (runner/runner.c) compiled to wasm32-wasi, built from a pinned,
// checksummed source by scripts/build-jsengine.sh and embedded in the
// binary. A JavaScript function arrives as a script in a small container
// (Wrap) and is stored with its bytecode, compiled at upload (Compiled);
// workers run it in this one engine module, as a funless-ABI guest, under
// the same sandbox and limits as any other function.
package jsengine

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
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

// compiledMagic starts a JavaScript function stored with its bytecode.
var compiledMagic = []byte("\x00ejc")

// IDSize is the length of an engine's identity (ID).
const IDSize = 8

// compiledHeader is the magic, the engine's ID and the source's length.
const compiledHeader = 4 + IDSize + 4

// Wrap makes the code of a JavaScript function from its source, as the CLI
// uploads it.
func Wrap(source []byte) []byte {
	return append(append(make([]byte, 0, len(magic)+len(source)), magic...), source...)
}

// Compiled makes the stored code of a JavaScript function: its source and
// the bytecode the engine of identity id made of it. The source stays so
// that an engine of another build (whose bytecode differs) can run it.
func Compiled(id [IDSize]byte, source, bytecode []byte) []byte {
	b := make([]byte, 0, compiledHeader+len(source)+len(bytecode))
	b = append(append(b, compiledMagic...), id[:]...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(source)))
	return append(append(b, source...), bytecode...)
}

// Script is a JavaScript function's code taken apart.
type Script struct {
	Source   []byte
	Bytecode []byte       // nil for code made by Wrap
	Engine   [IDSize]byte // the engine that made Bytecode
}

// Parse takes code made by Wrap or Compiled apart; ok is false for any
// other code, err set for a compiled container that is cut short.
func Parse(code []byte) (s Script, ok bool, err error) {
	switch {
	case bytes.HasPrefix(code, magic):
		return Script{Source: code[len(magic):]}, true, nil
	case !bytes.HasPrefix(code, compiledMagic):
		return Script{}, false, nil
	case len(code) < compiledHeader:
		return Script{}, true, fmt.Errorf("compiled JavaScript: %d bytes, shorter than its %d-byte header", len(code), compiledHeader)
	}
	copy(s.Engine[:], code[4:])
	n := binary.LittleEndian.Uint32(code[4+IDSize:])
	if uint64(n) > uint64(len(code)-compiledHeader) {
		return Script{}, true, fmt.Errorf("compiled JavaScript: a source of %d bytes in %d", n, len(code)-compiledHeader)
	}
	s.Source = code[compiledHeader : compiledHeader+int(n)]
	s.Bytecode = code[compiledHeader+int(n):]
	return s, true, nil
}

// Source returns the script of code made by Wrap or Compiled, and whether
// the code is one.
func Source(code []byte) ([]byte, bool) {
	s, ok, err := Parse(code)
	if !ok || err != nil {
		return nil, false
	}
	return s.Source, true
}

// IsCompiled reports whether code is a compiled container (Compiled):
// only the core makes those, an upload must not carry one.
func IsCompiled(code []byte) bool { return bytes.HasPrefix(code, compiledMagic) }

// Frame is the engine's input for one call: mode 'r' runs the handler of
// a script on args, 'x' that of a script's bytecode, 'R' and 'X' only run
// their top level (a prepared instance's later frames carry no script),
// 'c' only checks the script, 'b' answers its bytecode (runner/runner.c
// reads it).
func Frame(mode byte, script, args []byte) []byte {
	b := make([]byte, 5, 5+len(script)+len(args))
	b[0] = mode
	binary.LittleEndian.PutUint32(b[1:], uint32(len(script)))
	return append(append(b, script...), args...)
}

var (
	once   sync.Once
	engine []byte
	id     [IDSize]byte
)

// Wasm returns the engine module, or ErrUnavailable.
func Wasm() ([]byte, error) {
	once.Do(func() {
		engine = load(dist)
		sum := sha256.Sum256(engine)
		copy(id[:], sum[:])
	})
	if engine == nil {
		return nil, ErrUnavailable
	}
	return engine, nil
}

// ID is the identity of this binary's engine (its checksum's first
// bytes): bytecode runs only on the engine that made it.
func ID() [IDSize]byte {
	Wasm()
	return id
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
