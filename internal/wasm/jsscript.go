package wasm

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/edgefaas/edgefaas/internal/jsengine"
)

// ABIJS is a JavaScript function: a script (jsengine.Wrap) run by the
// engine module jsengine embeds, which follows the funless ABI. Its
// instances are pooled like funless ones, per function and owner.
const ABIJS ABI = "js"

// jsCheckMemoryPages bounds the syntax check's engine instance (64 MiB).
const jsCheckMemoryPages = 1024

// jsScript is what a JavaScript function's instances are given: its
// bytecode (mode 'x') when it was compiled by this engine, else its source
// (mode 'r'), which each new instance then parses.
type jsScript struct {
	mode byte
	code []byte
}

// jsCheckInterpretedBytes is the largest script whose syntax check runs
// the engine in wazero's interpreter: compiling the engine that way takes
// about 0.3 s against 2 s optimised, but parsing runs some 15 times
// slower (a 1 MiB script: 30 s interpreted, on the loaded 2-core machine).
const jsCheckInterpretedBytes = 64 << 10

// inspectScript compiles a JavaScript function at upload: the engine is
// there, and the script parses (a syntax error is ErrCompile with its
// line and column); the engine's bytecode of it, with the source, is
// returned in ModuleInfo.Stored to be stored in place of the upload. A
// small script is compiled by the engine in wazero's interpreter, a large
// one by the engine compiled (jsCheckInterpretedBytes).
func inspectScript(ctx context.Context, script []byte) (ModuleInfo, error) {
	engine, err := jsengine.Wasm()
	if err != nil {
		return ModuleInfo{}, fmt.Errorf("%w: %v", ErrUnsupportedABI, err)
	}
	cfg := wazero.NewRuntimeConfigInterpreter()
	if len(script) > jsCheckInterpretedBytes {
		cfg = wazero.NewRuntimeConfigCompiler()
	}
	r := wazero.NewRuntimeWithConfig(ctx, cfg.WithMemoryLimitPages(jsCheckMemoryPages).WithCloseOnContextDone(true))
	defer r.Close(ctx)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r); err != nil {
		return ModuleInfo{}, fmt.Errorf("check the script: %w", err)
	}
	cm, err := r.CompileModule(ctx, engine)
	if err != nil {
		return ModuleInfo{}, fmt.Errorf("check the script: compile the engine: %w", err)
	}
	info, err := describe(cm)
	if err != nil {
		return ModuleInfo{}, fmt.Errorf("check the script: the engine: %w", err)
	}
	info.ABI, info.Exports, info.Imports = ABIJS, nil, nil

	input := jsengine.Frame('b', script, nil)
	var response, failure []byte
	var logs strings.Builder
	// The engine's imports: the input and the verdict; the others (logs,
	// outbound requests) are never called while a script compiles.
	bodies := map[string]func(m api.Module, stack []uint64){
		"fl_imps.__get_input_data": func(m api.Module, s []uint64) { write(m, "__get_input_data", api.DecodeU32(s[0]), input) },
		"fl_imps.__insert_response": func(m api.Module, s []uint64) {
			response = append([]byte(nil), read(m, "__insert_response", api.DecodeU32(s[0]), api.DecodeU32(s[1]))...)
		},
		"fl_imps.__insert_error": func(m api.Module, s []uint64) {
			failure = append([]byte(nil), read(m, "__insert_error", api.DecodeU32(s[0]), min(api.DecodeU32(s[1]), 4096))...)
		},
	}
	builders := map[string]wazero.HostModuleBuilder{}
	for full, sig := range hostSignatures {
		mod, name, _ := strings.Cut(full, ".")
		if builders[mod] == nil {
			builders[mod] = r.NewHostModuleBuilder(mod)
		}
		body := bodies[full]
		if body == nil {
			body = func(api.Module, []uint64) {}
		}
		builders[mod].NewFunctionBuilder().WithGoModuleFunction(api.GoModuleFunc(func(_ context.Context, m api.Module, stack []uint64) {
			body(m, stack)
		}), sig.params, sig.results).Export(name)
	}
	for _, b := range builders {
		if _, err := b.Instantiate(ctx); err != nil {
			return ModuleInfo{}, fmt.Errorf("check the script: %w", err)
		}
	}
	mod, err := r.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName("").WithStderr(&logs).WithStartFunctions("_initialize"))
	if err != nil {
		return ModuleInfo{}, fmt.Errorf("check the script: start the engine: %w", err)
	}
	res, err := mod.ExportedFunction("__invoke").Call(ctx, uint64(len(input)))
	switch {
	case err != nil && isOutOfMemory(logs.String()):
		return info, fmt.Errorf("%w: the script is too large to parse within %d MiB", ErrCompile, jsCheckMemoryPages/16)
	case err != nil:
		var ab *abort
		if errors.As(err, &ab) {
			return info, fmt.Errorf("check the script: %w", ab.err)
		}
		return info, fmt.Errorf("check the script: %w", err)
	case failure != nil:
		return info, scriptError(string(failure))
	case len(res) != 1 || res[0] != 0 || len(response) == 0:
		return info, fmt.Errorf("check the script: the engine answered no bytecode")
	}
	info.Stored = jsengine.Compiled(jsengine.ID(), script, response)
	return info, nil
}

// scriptModule returns the engine's code when code is a JavaScript
// function, with its script: the bytecode if this engine made it, else
// the source; code itself otherwise.
func scriptModule(code []byte) (wasmCode []byte, script *jsScript, err error) {
	s, ok, err := jsengine.Parse(code)
	if !ok {
		return code, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrCompile, err)
	}
	engine, err := jsengine.Wasm()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUnsupportedABI, err)
	}
	if s.Bytecode != nil && s.Engine == jsengine.ID() {
		return engine, &jsScript{mode: 'x', code: s.Bytecode}, nil
	}
	return engine, &jsScript{mode: 'r', code: s.Source}, nil
}

// scriptLine finds the line and column of a parse error in QuickJS's stack.
var scriptLine = regexp.MustCompile(`at ` + regexp.QuoteMeta(jsScriptName) + `:(\d+)(?::(\d+))?`)

// jsScriptName is the file name the runner gives the script.
const jsScriptName = "function.js"

// scriptError turns the engine's verdict on a script that does not parse
// ("SyntaxError: ...\n    at function.js:LINE:COLUMN") into ErrCompile
// with the line and column.
func scriptError(verdict string) error {
	first, _, _ := strings.Cut(strings.TrimSpace(verdict), "\n")
	m := scriptLine.FindStringSubmatch(verdict)
	if m != nil && m[2] != "" {
		return fmt.Errorf("%w: JavaScript syntax error at line %s, column %s: %s", ErrCompile, m[1], m[2], first)
	}
	if m != nil {
		return fmt.Errorf("%w: JavaScript syntax error at line %s: %s", ErrCompile, m[1], first)
	}
	return fmt.Errorf("%w: JavaScript: %s", ErrCompile, first)
}

// jsShared is the engine module compiled for one runtime (memory limit),
// shared by every JavaScript function of that limit: its machine code
// and its decoded module (about 1 MiB of Go heap, which a compile per
// function would repeat) exist once. It is closed with the last function.
type jsShared struct {
	cm    wazero.CompiledModule
	info  ModuleInfo
	refs  int
	bytes int64      // code budget held for the engine's code
	image *dataImage // the engine's data (cm is compiled without it), or nil
}

// compileScript makes a JavaScript function's module: the shared engine of
// r and the script, counted against the code budget for the script.
func (e *Engine) compileScript(ctx context.Context, r wazero.Runtime, engine []byte, script *jsScript, key moduleKey, limits Limits) (*Module, error) {
	keep := e.codeMem.fit(CodeBytes(len(script.code)))
	if err := e.reserveCode(ctx, keep); err != nil {
		return nil, err
	}
	sh, err := e.sharedEngine(ctx, r, key.pages, engine)
	if err != nil {
		e.codeMem.release("", keep)
		return nil, err
	}
	e.stats.compiles.Add(1)
	m := &Module{Hash: key.hash, Info: sh.info, Limits: limits, engine: e, compiled: sh.cm, rt: r, life: newLife(key, keep), script: script, js: sh}
	e.log.Debug("compiled", "hash", key.hash[:12], "abi", ABIJS, "pages", key.pages, "bytes", keep)
	return m, nil
}

// sharedEngine returns the engine compiled for the runtime of pages,
// compiling it first if no JavaScript function of that limit is compiled,
// and counts one more user. The engine's code is reserved from the code
// budget before jsMu is taken: making room may close a JavaScript
// function, whose release takes jsMu.
func (e *Engine) sharedEngine(ctx context.Context, r wazero.Runtime, pages uint32, engine []byte) (*jsShared, error) {
	e.jsMu.Lock()
	if sh := e.js[pages]; sh != nil {
		sh.refs++
		e.jsMu.Unlock()
		return sh, nil
	}
	e.jsMu.Unlock()

	keep := e.codeMem.fit(CodeBytes(len(engine)))
	work := e.codeMem.fit(keep+int64(len(engine))*compileBytesPerWasmByte) - keep
	if err := e.reserveCode(ctx, keep+work); err != nil {
		return nil, err
	}
	defer e.codeMem.release("", work)
	// The compiler's working set is garbage once it returns, as for any
	// module (compile.go), and the engine's is the largest a worker sees:
	// the worker held about 60 MiB of Go heap after it until the
	// scavenger got to it.
	defer debug.FreeOSMemory()
	e.jsMu.Lock()
	defer e.jsMu.Unlock()
	if sh := e.js[pages]; sh != nil { // compiled meanwhile
		sh.refs++
		e.codeMem.release("", keep)
		return sh, nil
	}
	start := time.Now()
	// The engine's data goes to an image, as a Go guest's does: the
	// instances a template starts must not have it written over their
	// template's pages.
	var img *dataImage
	if rest, segs := splitData(engine); segs != nil {
		var err error
		if img, err = newDataImage(e.cfg.CacheDir, segs); err == nil {
			engine = rest
		}
	}
	cm, err := r.CompileModule(experimental.WithCompilationWorkers(ctx, e.cfg.CompilationWorkers), engine)
	if err != nil {
		img.close()
		e.codeMem.release("", keep)
		return nil, fmt.Errorf("%w: the JavaScript engine: %v", ErrCompile, err)
	}
	info, err := describe(cm)
	if err != nil {
		img.close()
		cm.Close(ctx)
		e.codeMem.release("", keep)
		return nil, fmt.Errorf("the JavaScript engine: %w", err)
	}
	info.ABI, info.Exports, info.Imports = ABIJS, nil, nil
	sh := &jsShared{cm: cm, info: info, refs: 1, bytes: keep, image: img}
	e.js[pages] = sh
	e.log.Debug("compiled the JavaScript engine", "pages", pages, "bytes", keep, "took", time.Since(start))
	return sh, nil
}

// releaseEngine drops one user of a shared engine; the last closes it.
func (e *Engine) releaseEngine(ctx context.Context, sh *jsShared, pages uint32) {
	e.jsMu.Lock()
	sh.refs--
	last := sh.refs == 0
	if last && e.js[pages] == sh {
		delete(e.js, pages)
	}
	e.jsMu.Unlock()
	if last {
		sh.cm.Close(ctx)
		sh.image.close()
		e.codeMem.release("", sh.bytes)
	}
}
