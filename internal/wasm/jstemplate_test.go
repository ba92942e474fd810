package wasm_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/jsengine"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// TestJSTopLevelOnce: a JavaScript function's top level runs once per
// worker, not once per instance: every instance after the first starts
// from the memory the first one had after its top level. Each instance
// still starts clean (a call's state does not reach the next instance)
// and draws its own Math.random() sequence.
func TestJSTopLevelOnce(t *testing.T) {
	needEngine(t)
	ctx := context.Background()
	// One call per instance: every call below starts a new one.
	e := newEngine(t, wasm.Config{RecycleAfterCalls: 1})
	for _, c := range []struct{ name, src string }{
		{"script", "console.log('top level'); const table = [1, 2, 3]; let calls = 0;\n" +
			"module.exports.fl_main = () => ({ calls: ++calls, sum: table.reduce((a, b) => a + b), r: Math.random() });"},
		{"esm", "console.log('top level'); const table = [1, 2, 3]; let calls = 0;\n" +
			"export default async () => ({ calls: ++calls, sum: table.reduce((a, b) => a + b), r: Math.random() });"},
	} {
		t.Run(c.name, func(t *testing.T) {
			info, err := wasm.Inspect(ctx, jsengine.Wrap([]byte(c.src)))
			if err != nil {
				t.Fatal(err)
			}
			m, err := e.Compile(ctx, info.Stored, wasm.Limits{Timeout: 20 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			const calls = 5
			before := e.Stats()
			topLevels := 0
			seen := map[float64]bool{}
			for i := range calls {
				res, err := e.Invoke(ctx, m, wasm.Invocation{Function: "t/" + c.name})
				if err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				for _, l := range res.Logs {
					if strings.Contains(l, "top level") {
						topLevels++
					}
				}
				var out struct {
					Calls, Sum int
					R          float64
				}
				if err := json.Unmarshal(res.Output, &out); err != nil || out.Calls != 1 || out.Sum != 6 {
					t.Fatalf("call %d: output %s (%v): each instance must start as the top level left it", i, res.Output, err)
				}
				if seen[out.R] {
					t.Fatalf("call %d: Math.random() gave %v again: instances share a seed", i, out.R)
				}
				seen[out.R] = true
			}
			after := e.Stats()
			if created := after.InstancesCreated - before.InstancesCreated; created != calls {
				t.Fatalf("%d instances for %d calls, want one each", created, calls)
			}
			if topLevels != 1 {
				t.Fatalf("the top level ran %d times (its log line) in %d new instances, want once", topLevels, calls)
			}
			if prepared := after.JSPrepared - before.JSPrepared; prepared != 1 {
				t.Fatalf("Stats.JSPrepared rose by %d in %d new instances, want 1", prepared, calls)
			}
		})
	}
}

// TestJSTemplateFirstCall: a new instance answers its first call the
// same when it prepares (no template yet: bytecode read, top level run,
// template written) as when it starts from the template, for the examples
// and a large script. BenchmarkJSTemplateFirstCall measures what the
// template buys.
func TestJSTemplateFirstCall(t *testing.T) {
	needEngine(t)
	ctx := context.Background()
	e := newEngine(t, wasm.Config{RecycleAfterCalls: 1})
	for _, c := range firstCallScripts(t) {
		m := templateModule(t, e, c.src)
		var out [2]string
		for k := range 2 { // a new instance each call: it prepares, then starts from the template
			r, err := e.Invoke(ctx, m, wasm.Invocation{Function: "t/first", Input: []byte(c.input)})
			if err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			out[k] = string(r.Output)
		}
		if out[0] != out[1] || out[0] == "null" {
			t.Errorf("%s: preparing %s, from the template %s", c.name, out[0], out[1])
		}
	}
}

// BenchmarkJSTemplateFirstCall times a new instance's first call when it
// prepares and when it starts from the template: a new module each round
// (the comment), compiled outside the timer; the modules stay, so the
// engine is compiled once.
func BenchmarkJSTemplateFirstCall(b *testing.B) {
	needEngine(b)
	ctx := context.Background()
	e := newEngine(b, wasm.Config{RecycleAfterCalls: 1})
	for _, c := range firstCallScripts(b) {
		for k, form := range []string{"preparing", "template"} {
			b.Run(c.name+"/"+form, func(b *testing.B) {
				inv := wasm.Invocation{Function: "t/first", Input: []byte(c.input)}
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					m := templateModule(b, e, c.src+fmt.Sprintf("\n// %d %s", i, form))
					if k == 1 {
						if _, err := e.Invoke(ctx, m, inv); err != nil { // prepares the template
							b.Fatalf("%s: %v", c.name, err)
						}
					}
					b.StartTimer()
					if _, err := e.Invoke(ctx, m, inv); err != nil {
						b.Fatalf("%s: %v", c.name, err)
					}
				}
			})
		}
	}
}

// templateModule compiles a script's stored form (source and bytecode).
func templateModule(t testing.TB, e *wasm.Engine, src string) *wasm.Module {
	t.Helper()
	info, err := wasm.Inspect(context.Background(), jsengine.Wrap([]byte(src)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := e.Compile(context.Background(), info.Stored, firstCallLimits)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// firstCallScript is a script a first-call measurement runs, with its args.
type firstCallScript struct{ name, src, input string }

// firstCallScripts are the examples hellojs and matrixmultjs (n = 10) and
// a 236 KB script of 2,000 functions.
func firstCallScripts(t testing.TB) []firstCallScript {
	t.Helper()
	read := func(dir, file string) string {
		b, err := os.ReadFile(filepath.Join("..", "..", "examples", dir, file))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var big strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&big, "function f%d(a, b) { const o = { k: a, v: [b, %d, 'x%d'] }; return o.v.length > 1 ? o.k + b * %d : f%d(b, a) }\n", i, i, i, i, max(i-1, 0))
	}
	big.WriteString("function main(p) { return f1999(1, 2) }\n")
	return []firstCallScript{
		{"hellojs", read("hellojs", "hello.js"), `{"name":"Ada"}`},
		{"matrixmultjs", read("matrixmultjs", "matrix.js"), `{"n":10}`},
		{"2000 functions", big.String(), `{}`},
	}
}

// TestJSTemplateLeavesUnwrittenPagesAlone: making a function's template
// from its first instance does not make that instance's untouched linear
// memory resident. Twenty functions are called once each (each call
// prepares a new instance and writes its template): the process's
// anonymous memory grows by less than half the linear memory those
// instances committed (Stats.LinearMemory), where reading every page to
// write the template made all of it resident (1.13 MiB of 1.2 MiB each).
func TestJSTemplateLeavesUnwrittenPagesAlone(t *testing.T) {
	needEngine(t)
	if _, err := anonymous(); err != nil {
		t.Skipf("no smaps_rollup here: %v", err)
	}
	ctx := context.Background()
	e := newEngine(t, wasm.Config{CacheDir: t.TempDir()})
	src := firstCallScripts(t)[0].src // hellojs
	var ms []*wasm.Module
	for i := range 20 {
		ms = append(ms, templateModule(t, e, src+fmt.Sprintf("\n// %d", i)))
	}
	before, err := anonymous()
	if err != nil {
		t.Fatal(err)
	}
	linear := e.Stats().LinearMemory
	for _, m := range ms {
		if _, err := e.Invoke(ctx, m, wasm.Invocation{Function: "t/template", Input: []byte(`{"name":"edge"}`)}); err != nil {
			t.Fatal(err)
		}
	}
	after, err := anonymous()
	if err != nil {
		t.Fatal(err)
	}
	st := e.Stats()
	if st.JSPrepared != 20 || st.InstancesCreated != 20 {
		t.Fatalf("%d instances prepared, %d created; want 20 each", st.JSPrepared, st.InstancesCreated)
	}
	committed := st.LinearMemory - linear
	if grew := after - before; grew*2 >= committed {
		t.Fatalf("anonymous memory grew by %d KiB for 20 instances committing %d KiB of linear memory: their untouched pages became resident", grew>>10, committed>>10)
	} else {
		t.Logf("anonymous memory grew by %d KiB for 20 instances committing %d KiB", grew>>10, committed>>10)
	}
}

// anonymous is this process's anonymous memory, bytes, after a collection
// returned what the Go heap does not use.
func anonymous() (int64, error) {
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/smaps_rollup")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Anonymous:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no Anonymous line in smaps_rollup")
}
