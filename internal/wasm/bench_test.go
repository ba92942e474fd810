package wasm_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/edgefaas/edgefaas/internal/matrix"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// The benchmarks measure, for each function and in the same run:
//
//	compile  compiling the module with wazero's optimizing compiler (no disk cache)
//	cold     instantiating it and calling it once (a new instance per call)
//	warm     calling a reused, already initialized instance (funless ABI only)
//	native   the same work in plain Go, for the ratio in docs/performance.md
//
// They never assert timings. Run them with `make bench`.

const helloInput = `{"name":"edge"}`

// BenchmarkHello runs hello under both ABIs: the Go SDK reactor (funless
// ABI), a Go WASI command and a C WASI command.
func BenchmarkHello(b *testing.B) {
	for _, tc := range []struct{ name, module string }{
		{"funless-go", "hello"},
		{"wasi-go", "hello-wasi-go"},
		{"wasi-c", "hello-c"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			benchModule(b, tc.module, helloInput, `{"message":"Hello, edge!"}`)
		})
	}
	b.Run("native", func(b *testing.B) {
		for b.Loop() {
			if _, err := nativeHello([]byte(helloInput)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMatrixMult runs the paper's matrixmult (100×100) as a funless
// Go reactor and natively.
func BenchmarkMatrixMult(b *testing.B) {
	in := `{"n":100,"seed":42}`
	want, err := nativeMatrix([]byte(in))
	if err != nil {
		b.Fatal(err)
	}
	benchModule(b, "matrixmult", in, string(want))
	b.Run("native", func(b *testing.B) {
		for b.Loop() {
			if _, err := nativeMatrix([]byte(in)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// nativeHello is hello's body in plain Go: decode, build the map, encode.
func nativeHello(input []byte) ([]byte, error) {
	var args struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(input, &args); err != nil {
		return nil, err
	}
	if args.Name == "" {
		args.Name = "World"
	}
	return json.Marshal(map[string]string{"message": "Hello, " + args.Name + "!"})
}

// nativeMatrix is matrixmult's body in plain Go.
func nativeMatrix(input []byte) ([]byte, error) {
	args := struct {
		N    int    `json:"n"`
		Seed uint64 `json:"seed"`
	}{N: 100, Seed: 42}
	if err := json.Unmarshal(input, &args); err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{"n": args.N, "checksum": matrix.Multiply(args.N, args.Seed)})
}

// benchModule runs the compile, cold and warm sub-benchmarks of one module.
func benchModule(b *testing.B, module, input, want string) {
	code := testmodules.Read(b, module)
	ctx := context.Background()
	inv := wasm.Invocation{Function: "bench/" + module, Input: []byte(input)}

	b.Run("compile", func(b *testing.B) {
		e := newEngine(b, wasm.Config{})
		hash := wasm.Hash(code)
		// The first compile also creates the engine's runtime (WASI and the
		// host modules); evicting between iterations makes each one a real
		// compilation of the same code.
		if _, err := e.Compile(ctx, code, wasm.Limits{}); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(code)))
		b.ResetTimer()
		for range b.N {
			b.StopTimer()
			e.Evict(ctx, hash)
			b.StartTimer()
			if _, err := e.Compile(ctx, code, wasm.Limits{}); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(len(code)), "wasm-bytes")
	})

	b.Run("cold", func(b *testing.B) {
		// RecycleAfterCalls 1 closes a funless instance after every call; a
		// WASI command gets a fresh instance per call anyway.
		e := newEngine(b, wasm.Config{RecycleAfterCalls: 1})
		m := compile(b, e, module, wasm.Limits{})
		check(b, e, m, inv, want, false)
		before := e.Stats().InstancesCreated
		var guest int64
		for b.Loop() {
			res, err := e.Invoke(ctx, m, inv)
			if err != nil {
				b.Fatal(err)
			}
			guest += int64(res.Duration)
		}
		n := float64(b.N)
		b.ReportMetric(float64(e.Stats().InstancesCreated-before)/n, "instances/op")
		b.ReportMetric(float64(guest)/n, "guest-ns/op")
	})

	b.Run("warm", func(b *testing.B) {
		e := newEngine(b, wasm.Config{})
		m := compile(b, e, module, wasm.Limits{})
		if m.Info.ABI != wasm.ABIFunless {
			b.Skipf("not applicable: %s is a WASI command, every call instantiates it (see cold)", module)
		}
		check(b, e, m, inv, want, false) // creates the instance
		check(b, e, m, inv, want, true)
		before := e.Stats().InstancesCreated
		var guest int64
		for b.Loop() {
			res, err := e.Invoke(ctx, m, inv)
			if err != nil {
				b.Fatal(err)
			}
			guest += int64(res.Duration)
		}
		n := float64(b.N)
		b.ReportMetric(float64(e.Stats().InstancesCreated-before)/n, "instances/op")
		b.ReportMetric(float64(guest)/n, "guest-ns/op")
	})
}

// check invokes m once and verifies the output and warmth, so that a
// benchmark never times a failing call.
func check(b *testing.B, e *wasm.Engine, m *wasm.Module, inv wasm.Invocation, want string, warm bool) {
	b.Helper()
	res, err := e.Invoke(context.Background(), m, inv)
	if err != nil {
		b.Fatal(err)
	}
	jsonEqual(b, res.Output, want)
	if res.Warm != warm {
		b.Fatalf("warm = %v, want %v", res.Warm, warm)
	}
}
