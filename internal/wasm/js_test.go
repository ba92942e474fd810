package wasm_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/jsengine"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// needEngine skips where the binary under test has no JavaScript engine
// (a plain `go test` without scripts/build-jsengine.sh); the test goals
// build it, and tests/functions/js fails without it.
func needEngine(t testing.TB) {
	t.Helper()
	if !jsengine.Available() {
		t.Skip(jsengine.ErrUnavailable)
	}
}

// TestJSShapes runs the three shapes of JavaScript function and checks
// the upload-time syntax check, in the engine, without a cluster.
func TestJSShapes(t *testing.T) {
	needEngine(t)
	ctx := context.Background()
	e := newEngine(t, wasm.Config{})
	limits := wasm.Limits{Timeout: 20 * time.Second}
	for _, c := range []struct{ name, src, want string }{
		{"funless", `module.exports.fl_main = function (input) { console.log("hi", input.name); return { greeting: "Hello " + input.name } }`, `{"greeting":"Hello Ada"}`},
		{"openwhisk", `function main(params) { return { n: params.name.length } }`, `{"n":3}`},
		{"esm", `export default function (args) { return [args.name] }`, `["Ada"]`},
		{"esm async", `export default async function (args) { await null; return args.name }`, `"Ada"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			code := jsengine.Wrap([]byte(c.src))
			info, err := wasm.Inspect(ctx, code)
			if err != nil || info.ABI != wasm.ABIJS || info.Stored == nil {
				t.Fatalf("Inspect: %+v, %v", info, err)
			}
			m, err := e.Compile(ctx, info.Stored, limits)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				res, err := e.Invoke(ctx, m, wasm.Invocation{Function: "t/" + c.name, Input: []byte(`{"name":"Ada"}`)})
				if err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				if string(res.Output) != c.want {
					t.Fatalf("call %d: output %s, want %s (logs %q)", i, res.Output, c.want, res.Logs)
				}
			}
		})
	}
	_, err := wasm.Inspect(ctx, jsengine.Wrap([]byte("function main() {\n  return (1 + ;\n}")))
	if !errors.Is(err, wasm.ErrCompile) || !strings.Contains(err.Error(), "syntax error at line 2, column 15") {
		t.Fatalf("syntax error: %v", err)
	}
	t.Log(err)
}

// TestJSModuleDetection: an ES module whose first statement is not an
// import or export is still run as a module, and a classic script's
// syntax error names its own line.
func TestJSModuleDetection(t *testing.T) {
	needEngine(t)
	ctx := context.Background()
	e := newEngine(t, wasm.Config{})
	m, err := e.Compile(ctx, jsengine.Wrap([]byte("// a comment\nconst k = 2;\nexport default (a) => a.n * k;\n")), wasm.Limits{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Invoke(ctx, m, wasm.Invocation{Function: "t/esm", Input: []byte(`{"n":21}`)})
	if err != nil || string(res.Output) != "42" {
		t.Fatalf("module: %v, %v", res, err)
	}
	_, err = wasm.Inspect(ctx, jsengine.Wrap([]byte("// x\nconst a = 1;\nexport default function () {\n  return (;\n}\n")))
	if !errors.Is(err, wasm.ErrCompile) || !strings.Contains(err.Error(), "line 4") {
		t.Fatalf("a module's syntax error: %v", err)
	}
}

// TestJSStackOverflow: unbounded recursion is QuickJS's "InternalError:
// stack overflow", a function error with its stack cut to 32 frames, not
// a trap of the engine's own stack.
func TestJSStackOverflow(t *testing.T) {
	needEngine(t)
	ctx := context.Background()
	e := newEngine(t, wasm.Config{})
	m, err := e.Compile(ctx, jsengine.Wrap([]byte("function deep(n) { return deep(n + 1) + 1 }\nfunction main() { return deep(0) }\n")), wasm.Limits{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Invoke(ctx, m, wasm.Invocation{Function: "t/deep"})
	var fe *wasm.FunctionError
	if !errors.As(err, &fe) || !strings.HasPrefix(fe.Message, "InternalError: stack overflow\n") || !strings.HasSuffix(fe.Message, " more frames") {
		t.Fatalf("recursion: %v", err)
	}
}

// TestJSEngineShared: JavaScript functions of one memory limit share one
// compiled engine, counted once against the code budget beside each
// script; evicting one leaves the others running, and the last one's
// eviction frees the engine's code.
func TestJSEngineShared(t *testing.T) {
	needEngine(t)
	ctx := context.Background()
	e := newEngine(t, wasm.Config{})
	engine, _ := jsengine.Wasm()
	limits := wasm.Limits{Timeout: 20 * time.Second}
	a := jsengine.Wrap([]byte("function main() { return 'a' }"))
	b := jsengine.Wrap([]byte("function main() { return 'b' }"))
	ma, err := e.Compile(ctx, a, limits)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := e.Compile(ctx, b, limits)
	if err != nil {
		t.Fatal(err)
	}
	want := wasm.CodeBytes(len(engine)) + wasm.CodeBytes(len(a)-4) + wasm.CodeBytes(len(b)-4)
	if got := e.Stats().CodeBytes; got != want {
		t.Fatalf("code budget held for two JS functions: %d, want the engine once and each script: %d", got, want)
	}
	for _, m := range []*wasm.Module{ma, mb} {
		if _, err := e.Invoke(ctx, m, wasm.Invocation{Function: "t/x"}); err != nil {
			t.Fatal(err)
		}
	}
	e.Evict(ctx, ma.Hash)
	res, err := e.Invoke(ctx, mb, wasm.Invocation{Function: "t/b"})
	if err != nil || string(res.Output) != `"b"` {
		t.Fatalf("the other function after an eviction: %v, %v", res, err)
	}
	e.Evict(ctx, mb.Hash)
	wait.ForState(t, time.Minute, "the code budget to be free once both are evicted (closed after their calls)", func() (bool, string) {
		got := e.Stats().CodeBytes
		return got == 0, fmt.Sprintf("%d bytes held", got)
	})
}

// TestJSTimers: setTimeout callbacks run in order of their due times
// while the handler's Promise waits, clearTimeout cancels one, and a
// timer's throw is the call's error.
func TestJSTimers(t *testing.T) {
	needEngine(t)
	ctx := context.Background()
	e := newEngine(t, wasm.Config{})
	limits := wasm.Limits{Timeout: 20 * time.Second}
	for _, c := range []struct{ name, src, want, err string }{
		{"order", `export default () => new Promise(done => {
  const seen = [];
  setTimeout(() => seen.push("b"), 30);
  setTimeout(() => seen.push("a"), 10);
  const x = setTimeout(() => seen.push("never"), 20);
  clearTimeout(x);
  setTimeout((s) => done(seen.concat(s)), 60, "end");
})`, `["a","b","end"]`, ""},
		{"throws", `export default () => new Promise(() => { setTimeout(() => { throw new TypeError("late") }, 5) })`, "", "TypeError: late"},
		{"never", `export default () => new Promise(() => {})`, "", "never settled"},
	} {
		m, err := e.Compile(ctx, jsengine.Wrap([]byte(c.src)), limits)
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.Invoke(ctx, m, wasm.Invocation{Function: "t/" + c.name})
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %v, want an error with %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil || string(res.Output) != c.want {
			t.Errorf("%s: %v, %v; want %s", c.name, res, err, c.want)
		}
	}
}

// TestJSTimerWakeups: a call awaiting a 2 s timer sleeps until it is due
// in a handful of WASI sleeps (Stats.GuestSleeps), not in short steps:
// each wake-up runs the runner's JS glue on a CPU slot, and 50 ms steps
// made about 40 of them for 2 s.
func TestJSTimerWakeups(t *testing.T) {
	needEngine(t)
	ctx := context.Background()
	e := newEngine(t, wasm.Config{})
	src := `export default async (a) => { await new Promise(done => setTimeout(done, a.ms)); return a.ms }`
	m, err := e.Compile(ctx, jsengine.Wrap([]byte(src)), wasm.Limits{Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sleep := func(ms int) int64 {
		t.Helper()
		before := e.Stats().GuestSleeps
		in := fmt.Sprintf(`{"ms":%d}`, ms)
		res, err := e.Invoke(ctx, m, wasm.Invocation{Function: "t/sleep", Input: []byte(in)})
		if err != nil || string(res.Output) != fmt.Sprint(ms) {
			t.Fatalf("sleep %d ms: %v, %v", ms, res, err)
		}
		return e.Stats().GuestSleeps - before
	}
	sleep(1) // the instance's first call prepares it
	n := sleep(2000)
	t.Logf("a 2 s timer: %d WASI sleeps", n)
	if n < 1 || n > 4 {
		t.Fatalf("a 2 s timer took %d WASI sleeps, want 1 to 4 (one until it is due, a few more if woken early)", n)
	}
}

// compiled is the stored form of a script: what Inspect makes of it at
// upload, with its bytecode.
func compiled(t testing.TB, src string) jsengine.Script {
	t.Helper()
	info, err := wasm.Inspect(context.Background(), jsengine.Wrap([]byte(src)))
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	s, ok, err := jsengine.Parse(info.Stored)
	if !ok || err != nil || s.Bytecode == nil || s.Engine != jsengine.ID() || string(s.Source) != src {
		t.Fatalf("stored %d bytes: %+v, %v, %v", len(info.Stored), s.Engine, ok, err)
	}
	return s
}

// TestJSBytecode: a script is stored with the bytecode the engine made of
// it at upload, and a worker runs that bytecode (a stored form whose
// source no longer parses still runs) with its lines in stacks; bytecode
// of another engine build is not read, the source is run instead; a
// compiled form cut short is refused.
func TestJSBytecode(t *testing.T) {
	needEngine(t)
	ctx := context.Background()
	e := newEngine(t, wasm.Config{})
	limits := wasm.Limits{Timeout: 20 * time.Second}
	run := func(code []byte, input string) (string, error) {
		t.Helper()
		m, err := e.Compile(ctx, code, limits)
		if err != nil {
			return "", err
		}
		res, err := e.Invoke(ctx, m, wasm.Invocation{Function: "t/bytecode", Input: []byte(input)})
		if err != nil {
			return "", err
		}
		return string(res.Output), nil
	}
	const src = "function main(p) {\n  if (p.fail) {\n    throw new Error(\"no\")\n  }\n  return p.n * 2\n}\n"
	s := compiled(t, src)
	broken := []byte("function main( {")
	if out, err := run(jsengine.Compiled(jsengine.ID(), broken, s.Bytecode), `{"n":21}`); err != nil || out != "42" {
		t.Fatalf("the bytecode beside a source that does not parse: %q, %v", out, err)
	}
	var fe *wasm.FunctionError
	if _, err := run(jsengine.Compiled(jsengine.ID(), []byte(src), s.Bytecode), `{"fail":true}`); !errors.As(err, &fe) || !strings.Contains(fe.Message, "function.js:3") {
		t.Fatalf("a throw from bytecode: %v, want its line in the stack", err)
	}
	other := jsengine.ID()
	other[0] ^= 0xff
	if out, err := run(jsengine.Compiled(other, []byte(src), []byte("not bytecode")), `{"n":2}`); err != nil || out != "4" {
		t.Fatalf("another engine's bytecode: %q, %v; want the source run", out, err)
	}
	es := compiled(t, "export default async (a) => { await null; return a.n + 1 }\n")
	if out, err := run(jsengine.Compiled(jsengine.ID(), broken, es.Bytecode), `{"n":1}`); err != nil || out != "2" {
		t.Fatalf("an ES module's bytecode: %q, %v", out, err)
	}
	stored := jsengine.Compiled(jsengine.ID(), []byte(src), s.Bytecode)
	if _, err := wasm.Inspect(ctx, stored[:10]); !errors.Is(err, wasm.ErrCompile) {
		t.Fatalf("a compiled form cut short: %v", err)
	}
	if _, err := e.Compile(ctx, stored[:10], limits); !errors.Is(err, wasm.ErrCompile) {
		t.Fatalf("compiling a compiled form cut short: %v", err)
	}
}

// TestJSBytecodeFirstCall: a new instance's first call (instantiate,
// load the script, call) answers the same from the source as from the
// bytecode, for the examples and a large script.
// BenchmarkJSBytecodeFirstCall measures what the bytecode buys.
func TestJSBytecodeFirstCall(t *testing.T) {
	needEngine(t)
	ctx := context.Background()
	e := newEngine(t, wasm.Config{})
	for _, c := range firstCallScripts(t) {
		var out [2]string
		for k, code := range bothForms(t, c.src) {
			m, err := e.Compile(ctx, code, firstCallLimits)
			if err != nil {
				t.Fatal(err)
			}
			r, err := e.Invoke(ctx, m, wasm.Invocation{Function: "t/first", Input: []byte(c.input)})
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			out[k] = string(r.Output)
			e.Evict(ctx, m.Hash)
		}
		if out[0] != out[1] || out[0] == "null" {
			t.Errorf("%s: from the source %s, from the bytecode %s", c.name, out[0], out[1])
		}
	}
}

// BenchmarkJSBytecodeFirstCall times a new instance's first call from
// the source and from the bytecode: a new module each round (the
// comment), compiled and evicted outside the timer.
func BenchmarkJSBytecodeFirstCall(b *testing.B) {
	needEngine(b)
	ctx := context.Background()
	e := newEngine(b, wasm.Config{})
	for _, c := range firstCallScripts(b) {
		for k, form := range []string{"source", "bytecode"} {
			b.Run(c.name+"/"+form, func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					m, err := e.Compile(ctx, bothForms(b, c.src+fmt.Sprintf("\n// %d", i))[k], firstCallLimits)
					if err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					if _, err := e.Invoke(ctx, m, wasm.Invocation{Function: "t/first", Input: []byte(c.input)}); err != nil {
						b.Fatalf("%s: %v", c.name, err)
					}
					b.StopTimer()
					e.Evict(ctx, m.Hash)
					b.StartTimer()
				}
			})
		}
	}
}

// firstCallLimits leave a large script's first call time to load.
var firstCallLimits = wasm.Limits{Timeout: 20 * time.Second}

// bothForms are a script's two stored forms: the source alone and the
// source with its bytecode.
func bothForms(t testing.TB, src string) [2][]byte {
	t.Helper()
	s := compiled(t, src)
	return [2][]byte{jsengine.Wrap([]byte(src)), jsengine.Compiled(jsengine.ID(), []byte(src), s.Bytecode)}
}
