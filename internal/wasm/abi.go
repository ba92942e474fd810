package wasm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/edgefaas/edgefaas/internal/jsengine"
)

// ABI names the calling convention a function module follows. It is
// detected from the module's exports at upload and stored with the function,
// so a worker knows how to call it without inspecting it again.
type ABI string

const (
	// ABIFunless is FunLess's reactor convention: the module exports
	// __invoke(input_len) and imports fl_imps.*. Instances may be reused.
	ABIFunless ABI = "funless"
	// ABIWasi is a WASI command: _start reads JSON args on stdin and writes
	// the JSON result on stdout. A fresh instance serves every call.
	ABIWasi ABI = "wasi"
)

// Import module names a function may use. Anything else is refused at upload
// so that a function gets exactly the capabilities edgefaas grants.
const (
	// ImportModuleFunless is FunLess's host module, kept byte-compatible.
	ImportModuleFunless = "fl_imps"
	// ImportModuleEdgefaas is the extension for new functions (capacity-aware
	// outbound HTTP and friends).
	ImportModuleEdgefaas = "edgefaas"
	// ImportModuleWASI is WASI preview 1, with no files, env or args granted.
	ImportModuleWASI = "wasi_snapshot_preview1"
)

// Errors returned when a module is refused. They are wrapped with detail;
// test with errors.Is.
var (
	// ErrNotWasm means the bytes do not start with the Wasm magic and version 1.
	ErrNotWasm = errors.New("not a WebAssembly module")
	// ErrCompile means the module is Wasm but does not validate or compile.
	ErrCompile = errors.New("module does not compile")
	// ErrUnsupportedABI means the module exports neither __invoke nor _start,
	// or imports something edgefaas does not provide.
	ErrUnsupportedABI = errors.New("unsupported module interface")
	// ErrValidationMemory means validating the module took more memory
	// than the validator's bound (the core answers 413).
	ErrValidationMemory = errors.New("validating the module exceeds the validator's memory bound")
)

// ModuleInfo describes a module as found at upload.
type ModuleInfo struct {
	ABI     ABI      // detected convention
	Exports []string // exported function names, sorted
	Imports []string // imported functions as "module.name", sorted
	// MinMemoryPages is the module's declared minimum linear memory: a
	// memory limit below it can never instantiate, so the API refuses a
	// capacity that small at upload.
	MinMemoryPages uint32
	// Stored, if not nil, is what to store in place of the uploaded code:
	// a JavaScript function with its bytecode (jsengine.Compiled).
	Stored []byte `json:",omitempty"`
}

var wasmHeader = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// checkHeader gives the clearest possible error for bytes that are not Wasm
// before handing them to a compiler.
func checkHeader(code []byte) error {
	if len(code) < len(wasmHeader) || !bytes.Equal(code[:4], wasmHeader[:4]) {
		return fmt.Errorf("%w: missing magic bytes \\0asm", ErrNotWasm)
	}
	if !bytes.Equal(code[4:8], wasmHeader[4:8]) {
		return fmt.Errorf("%w: binary format version %x is not 1", ErrNotWasm, code[4:8])
	}
	return checkSections(code[8:])
}

// checkSections refuses a module whose section sizes overrun the code or
// whose top-level vectors declare more entries than their section has
// bytes. wazero allocates a section's vector at its declared length before
// decoding any entry, so a 9 KB upload declaring 2^31 data segments made
// the core try to allocate hundreds of GiB and die (found by FuzzInspect).
// Every entry takes at least one byte, so the check refuses no valid module.
func checkSections(b []byte) error {
	for len(b) > 0 {
		id := b[0]
		size, n, ok := uleb32(b[1:])
		if !ok || uint64(size) > uint64(len(b)-1-n) {
			return fmt.Errorf("%w: section %d overruns the module", ErrCompile, id)
		}
		body := b[1+n : 1+n+int(size)]
		b = b[1+n+int(size):]
		if id == 0 || id > 13 || id == 8 || id == 12 { // custom, unknown (wazero refuses it), start and data count (no vector)
			continue
		}
		count, m, ok := uleb32(body)
		if !ok || uint64(count) > uint64(len(body)-m) {
			return fmt.Errorf("%w: section %d declares %d entries in %d bytes", ErrCompile, id, count, len(body))
		}
	}
	return nil
}

// uleb32 decodes an unsigned LEB128 number of at most 32 bits.
func uleb32(b []byte) (v uint32, n int, ok bool) {
	var shift uint
	for n < len(b) && n < 5 {
		c := b[n]
		n++
		v |= uint32(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, n, true
		}
		shift += 7
	}
	return 0, n, false
}

// Inspect validates code the way an upload must (a JavaScript function,
// made by jsengine.Wrap, is compiled by inspectScript instead, which
// returns its bytecode in ModuleInfo.Stored): it is Wasm, it decodes and
// validates as the compiler requires (every function body type-checked) and
// it follows one of the supported ABIs with only the imports edgefaas
// provides. It does not compile: wazero.ValidateModule (an edgefaas patch,
// patches/README.md) decodes and validates only, which takes a fraction of
// the memory of compiling (a 3.2 MB Go module: ~100 MiB to compile with the
// interpreter), so the core can afford it on every upload, on a small
// machine too.
func Inspect(ctx context.Context, code []byte) (ModuleInfo, error) {
	if s, ok, err := jsengine.Parse(code); ok {
		if err != nil {
			return ModuleInfo{}, fmt.Errorf("%w: %v", ErrCompile, err)
		}
		return inspectScript(ctx, s.Source)
	}
	if err := checkHeader(code); err != nil {
		return ModuleInfo{}, err
	}
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer r.Close(ctx)
	cm, err := wazero.ValidateModule(ctx, r, code)
	if err != nil {
		return ModuleInfo{}, fmt.Errorf("%w: %v", ErrCompile, err)
	}
	defer cm.Close(ctx)
	return describe(cm)
}

// describe detects the ABI of a compiled module and checks its imports.
func describe(cm wazero.CompiledModule) (ModuleInfo, error) {
	var info ModuleInfo
	for name := range cm.ExportedFunctions() {
		info.Exports = append(info.Exports, name)
	}
	sort.Strings(info.Exports)
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		info.Imports = append(info.Imports, mod+"."+name)
	}
	sort.Strings(info.Imports)
	for _, m := range cm.ExportedMemories() {
		info.MinMemoryPages = max(info.MinMemoryPages, m.Min())
	}
	for _, m := range cm.ImportedMemories() {
		info.MinMemoryPages = max(info.MinMemoryPages, m.Min())
	}

	exports := cm.ExportedFunctions()
	switch {
	case exports["__invoke"] != nil:
		if err := checkInvokeSignature(exports["__invoke"]); err != nil {
			return info, err
		}
		info.ABI = ABIFunless
	case exports["_start"] != nil:
		info.ABI = ABIWasi
	default:
		return info, fmt.Errorf("%w: it must export __invoke (funless ABI) or _start (WASI command); found exports [%s]",
			ErrUnsupportedABI, strings.Join(info.Exports, ", "))
	}
	for _, f := range cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		if err := checkImport(mod, name, f); err != nil {
			return info, err
		}
	}
	return info, nil
}

func checkInvokeSignature(f api.FunctionDefinition) error {
	i32 := []api.ValueType{api.ValueTypeI32}
	if !slices.Equal(f.ParamTypes(), i32) || !slices.Equal(f.ResultTypes(), i32) {
		return fmt.Errorf("%w: __invoke must have type (i32) -> i32, found (%s) -> (%s)",
			ErrUnsupportedABI, typeList(f.ParamTypes()), typeList(f.ResultTypes()))
	}
	return nil
}

// checkImport refuses any import edgefaas does not provide, with the exact
// signature, so that a bad module fails at upload rather than on a worker.
func checkImport(mod, name string, f api.FunctionDefinition) error {
	switch mod {
	case ImportModuleWASI:
		return nil // wazero's WASI implementation checks names and types at instantiation.
	case ImportModuleFunless, ImportModuleEdgefaas:
		want, ok := hostSignatures[mod+"."+name]
		if !ok {
			return fmt.Errorf("%w: import %s.%s is not provided by edgefaas", ErrUnsupportedABI, mod, name)
		}
		if !slices.Equal(f.ParamTypes(), want.params) || !slices.Equal(f.ResultTypes(), want.results) {
			return fmt.Errorf("%w: import %s.%s has type (%s) -> (%s), edgefaas provides (%s) -> (%s)",
				ErrUnsupportedABI, mod, name, typeList(f.ParamTypes()), typeList(f.ResultTypes()),
				typeList(want.params), typeList(want.results))
		}
		return nil
	default:
		return fmt.Errorf("%w: import %s.%s: module %q is not provided by edgefaas (only %s, %s and %s are)",
			ErrUnsupportedABI, mod, name, mod, ImportModuleFunless, ImportModuleEdgefaas, ImportModuleWASI)
	}
}

func typeList(ts []api.ValueType) string {
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = api.ValueTypeName(t)
	}
	return strings.Join(names, ", ")
}
