package wasm_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/nativec"
	"github.com/edgefaas/edgefaas/wasm"
)

// BenchmarkTerminationCheck prices the check that lets a timeout stop a
// guest, in one run: warm calls of the Go hello, the Go matrixmult and the
// C matmul with the inline countdown edgefaas uses ("countdown"), with
// wazero's own check at every loop back-edge ("stock") and with no check
// ("none", which no worker runs: a spinning guest could not be stopped),
// beside the same work natively (Go, and C through cgo from the same
// source). Besides the mean, each reports its fastest call (min-ns/op),
// which other load on the machine disturbs least. The README's
// performance section reports the ratios.
func BenchmarkTerminationCheck(b *testing.B) {
	matIn := `{"n":100,"seed":42}`
	matWant, err := nativeMatrix([]byte(matIn))
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct{ name, module, input, want string }{
		{"go-hello", "hello", helloInput, `{"message":"Hello, edge!"}`},
		{"go-matrixmult", "matrixmult", matIn, string(matWant)},
		{"c-matmul", "test/matmul", `{}`, ""},
	}
	if nativec.Available {
		cases[2].want = fmt.Sprintf(`{"checksum":%v}`, nativec.MatMul(100, 42))
	}
	for _, tc := range cases {
		for _, mode := range []string{"countdown", "stock", "none"} {
			b.Run(tc.name+"/"+mode, func(b *testing.B) {
				restore := wasm.SetTerminationCheck(mode)
				e := newEngine(b, wasm.Config{})
				m := compile(b, e, tc.module, wasm.Limits{})
				restore()
				inv := wasm.Invocation{Function: "bench/" + tc.module, Input: []byte(tc.input)}
				if tc.want != "" {
					check(b, e, m, inv, tc.want, false)
				} else if _, err := e.Invoke(context.Background(), m, inv); err != nil {
					b.Fatal(err)
				}
				best := time.Duration(math.MaxInt64)
				for b.Loop() {
					t0 := time.Now()
					if _, err := e.Invoke(context.Background(), m, inv); err != nil {
						b.Fatal(err)
					}
					best = min(best, time.Since(t0))
				}
				b.ReportMetric(float64(best), "min-ns/op")
			})
		}
	}
	b.Run("go-hello/native", func(b *testing.B) {
		benchMin(b, func() {
			if _, err := nativeHello([]byte(helloInput)); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("go-matrixmult/native", func(b *testing.B) {
		benchMin(b, func() {
			if _, err := nativeMatrix([]byte(matIn)); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("c-matmul/native", func(b *testing.B) {
		if !nativec.Available {
			b.Skip("built without cgo: no native C")
		}
		benchMin(b, func() { nativec.MatMul(100, 42) })
	})
}

// benchMin runs f b.N times and reports the fastest run as min-ns/op.
func benchMin(b *testing.B, f func()) {
	best := time.Duration(math.MaxInt64)
	for b.Loop() {
		t0 := time.Now()
		f()
		best = min(best, time.Since(t0))
	}
	b.ReportMetric(float64(best), "min-ns/op")
}
