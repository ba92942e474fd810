package wasm_test

import (
	"testing"

	"github.com/edgefaas/edgefaas/internal/wasm"
)

// TestGoGuestHeapStaysSmall: a warm instance of a Go SDK function does
// not keep growing its linear memory. One instance of the Go hello serves
// 5000 calls in a row; the linear memory it has committed (the engine's
// counter) grows by less than 2 MiB over them. With Go's own heap policy
// (GOGC=100) it grew by 3.75 MiB; with the SDK's (GOGC=25, a 16 MiB soft
// limit) by 1.3 MiB.
func TestGoGuestHeapStaysSmall(t *testing.T) {
	e := newEngine(t, wasm.Config{})
	m := compile(t, e, "hello", wasm.Limits{})
	if _, err := invoke(t, e, m, `{"name":"edge"}`); err != nil {
		t.Fatal(err)
	}
	first := e.Stats().LinearMemory
	const calls = 5000
	for i := range calls {
		if _, err := invoke(t, e, m, `{"name":"edge"}`); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	s := e.Stats()
	t.Logf("linear memory after the first call %d bytes, after %d more %d bytes (%d instances made)", first, calls, s.LinearMemory, s.InstancesCreated)
	if s.InstancesCreated != 1 || s.InstancesLive != 1 {
		t.Fatalf("%d instances made, %d live: want one, reused", s.InstancesCreated, s.InstancesLive)
	}
	if first <= 0 || s.LinearMemory-first >= 2<<20 {
		t.Errorf("a warm Go instance grew its linear memory from %d to %d bytes over %d calls", first, s.LinearMemory, calls)
	}
}
