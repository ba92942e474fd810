package wasm_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

func newEngine(t testing.TB, cfg wasm.Config) *wasm.Engine {
	t.Helper()
	e, err := wasm.NewEngine(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

func compile(t testing.TB, e *wasm.Engine, name string, l wasm.Limits) *wasm.Module {
	t.Helper()
	m, err := e.Compile(context.Background(), testmodules.Read(t, name), l)
	if err != nil {
		t.Fatalf("compile %s: %v", name, err)
	}
	return m
}

func invoke(t testing.TB, e *wasm.Engine, m *wasm.Module, input string) (*wasm.Result, error) {
	t.Helper()
	return e.Invoke(context.Background(), m, wasm.Invocation{Function: "test/fn", Input: []byte(input)})
}

// jsonEqual compares JSON documents by value.
func jsonEqual(t testing.TB, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("output %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatal(err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Fatalf("output %s, want %s", gb, wb)
	}
}

// TestABIs runs hello under both ABIs, from Go (SDK reactor and plain WASI
// command) and from C.
func TestABIs(t *testing.T) {
	e := newEngine(t, wasm.Config{})
	for _, tc := range []struct {
		module  string
		abi     wasm.ABI
		wantLog string
	}{
		{"hello", wasm.ABIFunless, ""},
		{"hello-wasi-go", wasm.ABIWasi, "greeting edge"},
		{"hello-c", wasm.ABIWasi, "greeting edge"},
	} {
		t.Run(tc.module, func(t *testing.T) {
			m := compile(t, e, tc.module, wasm.Limits{})
			if m.Info.ABI != tc.abi {
				t.Fatalf("ABI %q, want %q", m.Info.ABI, tc.abi)
			}
			for range 3 { // warm and cold paths
				res, err := invoke(t, e, m, `{"name":"edge"}`)
				if err != nil {
					t.Fatal(err)
				}
				jsonEqual(t, res.Output, `{"message":"Hello, edge!"}`)
				if tc.wantLog != "" && !slicesContains(res.Logs, tc.wantLog) {
					t.Fatalf("logs %q lack %q", res.Logs, tc.wantLog)
				}
			}
		})
	}
}

func slicesContains(lines []string, s string) bool {
	for _, l := range lines {
		if l == s {
			return true
		}
	}
	return false
}

// TestFunlessEcho checks the funless ABI's data path byte for byte and the
// console log import, with a C reactor.
func TestFunlessEcho(t *testing.T) {
	e := newEngine(t, wasm.Config{})
	m := compile(t, e, "test/echo", wasm.Limits{})
	in := `{"list":[1,2,3],"text":"ünïcødé","nested":{"a":null}}`
	res, err := invoke(t, e, m, in)
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Output) != in {
		t.Fatalf("echo %s, want %s", res.Output, in)
	}
	if !slicesContains(res.Logs, "echoing") {
		t.Fatalf("logs %q", res.Logs)
	}
}

// TestFailureModes runs each hostile function and checks the exact error,
// then that the engine still serves a healthy function.
func TestFailureModes(t *testing.T) {
	e := newEngine(t, wasm.Config{})
	small := wasm.Limits{Timeout: 500 * time.Millisecond, MemoryPages: 512, MaxOutputBytes: 1 << 20}
	for _, tc := range []struct {
		module   string
		input    string
		sentinel error  // nil: a *FunctionError
		text     string // in the error's message
	}{
		{"test/spin", "{}", wasm.ErrTimeout, "function timed out after 500ms"},
		{"test/trap", "{}", wasm.ErrTrap, "unreachable"},
		{"test/stackbomb", "{}", wasm.ErrTrap, "function trapped"},
		{"test/membomb", "{}", wasm.ErrMemoryLimit, "512 pages = 32 MiB"},
		{"test/outbomb", "{}", wasm.ErrOutputTooLarge, "8388608 bytes > 1048576"},
		{"test/nonjson", "{}", wasm.ErrInvalidOutput, `"hello, not json"`},
		{"test/wildptr", "{}", wasm.ErrBadPointer, "__get_input_data: [4294967040, +2) is outside memory"},
		{"test/fail", "{}", nil, "function error: the answer is not 42"},
		{"test/cfail", "{}", nil, "function error: cannot do that: no such widget"},
		{"hello", strings.Repeat(" ", 7<<20), wasm.ErrInputTooLarge, "7340032 bytes > 6291456"},
	} {
		t.Run(tc.module, func(t *testing.T) {
			m := compile(t, e, tc.module, small)
			if tc.sentinel == wasm.ErrInputTooLarge {
				m = compile(t, e, tc.module, wasm.Limits{})
			}
			_, err := invoke(t, e, m, tc.input)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.sentinel != nil && !errors.Is(err, tc.sentinel) {
				t.Fatalf("error %q is not %q", err, tc.sentinel)
			}
			var fe *wasm.FunctionError
			if tc.sentinel == nil && !errors.As(err, &fe) {
				t.Fatalf("error %q (%T) is not a FunctionError", err, err)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("error %q does not say %q", err, tc.text)
			}
			hello := compile(t, e, "hello", wasm.Limits{})
			if _, err := invoke(t, e, hello, `{}`); err != nil {
				t.Fatalf("engine broken after %s: %v", tc.module, err)
			}
		})
	}
}

// TestLogFlood: a million log lines are cut at the log limit and the
// invocation still succeeds.
func TestLogFlood(t *testing.T) {
	e := newEngine(t, wasm.Config{})
	m := compile(t, e, "test/logflood", wasm.Limits{MaxLogBytes: 4096})
	res, err := invoke(t, e, m, "{}")
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, res.Output, `"done"`)
	n := 0
	for _, l := range res.Logs {
		n += len(l)
	}
	if n > 4096+64 || res.Logs[len(res.Logs)-1] != "[edgefaas: log truncated]" {
		t.Fatalf("%d log bytes in %d lines, last %q", n, len(res.Logs), res.Logs[len(res.Logs)-1])
	}
}

// TestEmptyLogLines: lines that carry no bytes still count against the log
// bound, through the FunLess log import and through stderr alike, so tens
// of millions of them keep a bounded number.
func TestEmptyLogLines(t *testing.T) {
	e := newEngine(t, wasm.Config{})
	for _, module := range []string{"test/emptylog", "test/newlines"} {
		t.Run(module, func(t *testing.T) {
			m := compile(t, e, module, wasm.Limits{MaxLogBytes: 4096, Timeout: 5 * time.Minute})
			res, err := invoke(t, e, m, "{}")
			if err != nil {
				t.Fatal(err)
			}
			jsonEqual(t, res.Output, `"done"`)
			if max := 4096/wasm.LogLineCost + 1; len(res.Logs) > max || res.Logs[len(res.Logs)-1] != "[edgefaas: log truncated]" {
				t.Fatalf("%d log lines (at most %d), last %q", len(res.Logs), max, res.Logs[len(res.Logs)-1])
			}
		})
	}
}

// TestSandbox: a WASI command gets no files and no environment.
func TestSandbox(t *testing.T) {
	e := newEngine(t, wasm.Config{})
	m := compile(t, e, "test/sandbox", wasm.Limits{})
	res, err := invoke(t, e, m, "{}")
	if err != nil {
		t.Fatal(err)
	}
	jsonEqual(t, res.Output, `{"file_opened":false,"env_home":false,"env_path":false}`)
}

// TestLimitsAboveMaximum are refused, not lowered.
func TestLimitsAboveMaximum(t *testing.T) {
	e := newEngine(t, wasm.Config{Maxima: wasm.Limits{MemoryPages: 1024, Timeout: time.Minute}})
	_, err := e.Compile(context.Background(), testmodules.Read(t, "hello"), wasm.Limits{MemoryPages: 4096})
	if !errors.Is(err, wasm.ErrLimit) || !strings.Contains(err.Error(), "memory 4096 pages > 1024") {
		t.Fatalf("error %v", err)
	}
	_, err = e.Compile(context.Background(), testmodules.Read(t, "hello"), wasm.Limits{Timeout: time.Hour})
	if !errors.Is(err, wasm.ErrLimit) || !strings.Contains(err.Error(), "timeout 1h0m0s > 1m0s") {
		t.Fatalf("error %v", err)
	}
}

// TestPoolReuseAndRecycle counts instances: a funless function reuses its
// instance, recycles it after N calls and after any error.
func TestPoolReuseAndRecycle(t *testing.T) {
	e := newEngine(t, wasm.Config{RecycleAfterCalls: 3})
	m := compile(t, e, "hello", wasm.Limits{})
	for range 7 {
		if _, err := invoke(t, e, m, `{}`); err != nil {
			t.Fatal(err)
		}
	}
	s := e.Stats()
	// Calls 1-3 on instance A, 4-6 on B, 7 on C.
	if s.InstancesCreated != 3 || s.InstancesReused != 4 || s.InstancesRecycled != 2 {
		t.Fatalf("stats %+v", s)
	}
	f := compile(t, e, "test/fail", wasm.Limits{})
	for range 2 {
		if _, err := invoke(t, e, f, `{}`); err == nil {
			t.Fatal("fail succeeded")
		}
	}
	if s2 := e.Stats(); s2.InstancesCreated != s.InstancesCreated+2 || s2.InstancesReused != s.InstancesReused {
		t.Fatalf("a failed instance was reused: %+v", s2)
	}
}

// TestCompileOnce: concurrent compiles of the same code share one compilation.
func TestCompileOnce(t *testing.T) {
	e := newEngine(t, wasm.Config{})
	code := testmodules.Read(t, "hello-c")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.Compile(context.Background(), code, wasm.Limits{}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if s := e.Stats(); s.Compiles != 1 || s.Modules != 1 {
		t.Fatalf("stats %+v", s)
	}
	e.Evict(context.Background(), wasm.Hash(code))
	if s := e.Stats(); s.Modules != 0 {
		t.Fatalf("after evict: %+v", s)
	}
}

// TestBusy: beyond the concurrency limit and the queue, invocations fail
// fast with ErrBusy; the accepted ones complete.
func TestBusy(t *testing.T) {
	e := newEngine(t, wasm.Config{MaxConcurrent: 1, MaxQueue: 1})
	m := compile(t, e, "sleep", wasm.Limits{})
	results := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := invoke(t, e, m, `{"ms":1500}`)
			results <- err
		}()
	}
	// Wait until one runs and one waits.
	wait.For(t, time.Minute, "one call runs and one waits", func() bool {
		s := e.Stats()
		return s.Running == 1 && s.Queued == 1
	})
	_, err := invoke(t, e, m, `{"ms":1}`)
	if !errors.Is(err, wasm.ErrBusy) {
		t.Fatalf("third invocation: %v, want ErrBusy", err)
	}
	if s := e.Stats(); s.Running != 1 {
		t.Fatalf("the refusal was not immediate: %+v", s)
	}
	for range 2 {
		if err := <-results; err != nil {
			t.Fatalf("accepted invocation failed: %v", err)
		}
	}
}

// TestEvictWhileRunning: evicting a version lets its calls in flight
// finish, and a later call on the evicted module says ErrEvicted (nothing
// ran) instead of failing inside wazero.
func TestEvictWhileRunning(t *testing.T) {
	e := newEngine(t, wasm.Config{})
	m := compile(t, e, "sleep", wasm.Limits{})
	done := make(chan error, 1)
	go func() {
		_, err := invoke(t, e, m, `{"ms":300}`)
		done <- err
	}()
	wait.For(t, time.Minute, "the call runs", func() bool { return e.Stats().Running == 1 })
	e.Evict(context.Background(), m.Hash)
	if err := <-done; err != nil {
		t.Fatalf("the call in flight failed: %v", err)
	}
	if _, err := invoke(t, e, m, `{"ms":1}`); !errors.Is(err, wasm.ErrEvicted) {
		t.Fatalf("call after evict: %v, want ErrEvicted", err)
	}
}
