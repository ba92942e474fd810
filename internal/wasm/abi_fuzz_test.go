package wasm_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/outbound"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// fixedOutbound answers every outbound request with the same small body,
// without any network.
type fixedOutbound struct{}

func (fixedOutbound) Do(context.Context, *outbound.Request) *outbound.Response {
	return &outbound.Response{Status: 200, Body: []byte("fuzz response body")}
}

// classified reports whether err is one of the engine's documented
// outcomes: a function error or a wrapped sentinel.
func classified(err error) bool {
	var fe *wasm.FunctionError
	if errors.As(err, &fe) {
		return true
	}
	for _, s := range []error{wasm.ErrBadPointer, wasm.ErrTrap, wasm.ErrMemoryLimit, wasm.ErrOutputTooLarge,
		wasm.ErrInvalidOutput, wasm.ErrTimeout, wasm.ErrInputTooLarge} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// FuzzHostABI drives the funless ABI boundary with a guest (abifuzz) that
// calls one import — every fl_imps and edgefaas function — with arbitrary
// pointers and lengths. The host must never panic or hang, must answer
// with a classified error or a result, and must keep serving afterwards.
// Seeds are in testdata/fuzz/FuzzHostABI.
func FuzzHostABI(f *testing.F) {
	e, err := wasm.NewEngine(context.Background(), wasm.Config{Outbound: fixedOutbound{}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { e.Close(context.Background()) })
	m, err := e.Compile(context.Background(), testmodules.Read(f, "test/abifuzz"),
		wasm.Limits{MemoryPages: 64, Timeout: 5 * time.Second, MaxOutputBytes: 1 << 16, MaxLogBytes: 1 << 12})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(0), uint32(0xFFFFFF00), uint32(0), uint32(0), uint32(0), uint32(0), uint32(0), uint32(0), uint32(0), uint32(0), uint32(0))
	f.Add(uint8(5), uint32(1024), uint32(3), uint32(2048), uint32(20), uint32(0), uint32(0), uint32(0), uint32(0), uint32(4096), uint32(4100))
	f.Fuzz(func(t *testing.T, which uint8, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9 uint32) {
		input := fmt.Sprintf("[%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d]", which, a0, a1, a2, a3, a4, a5, a6, a7, a8, a9)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := e.Invoke(ctx, m, wasm.Invocation{Function: "fuzz/abi", Input: []byte(input)})
		if err != nil && !classified(err) {
			t.Fatalf("input %s: unclassified error %v", input, err)
		}
		if errors.Is(err, wasm.ErrTimeout) {
			t.Fatalf("input %s: a host call hung until the timeout", input)
		}
		// The engine keeps serving: a harmless call still succeeds. A call
		// that let the host write its input over the guest's own memory
		// (a legal pointer, a harmful place) may leave a pooled instance
		// that traps once; that trap discards it, so the call after must
		// succeed.
		_, err = e.Invoke(ctx, m, wasm.Invocation{Function: "fuzz/abi", Input: []byte("[3,0,0]")})
		if errors.Is(err, wasm.ErrTrap) {
			_, err = e.Invoke(ctx, m, wasm.Invocation{Function: "fuzz/abi", Input: []byte("[3,0,0]")})
		}
		if err != nil {
			t.Fatalf("after input %s the engine no longer serves: %v", input, err)
		}
	})
}

// FuzzInspect feeds arbitrary bytes to the upload validator: it must
// never panic, and must either describe a module with a supported ABI or
// refuse it with ErrNotWasm, ErrCompile or ErrUnsupportedABI.
// Seeds (real modules, truncated and corrupted) are in testdata/fuzz/FuzzInspect.
func FuzzInspect(f *testing.F) {
	for _, name := range []string{"hello-c", "test/echo", "test/sandbox", "test/wildptr"} {
		f.Add(testmodules.Read(f, name))
	}
	f.Fuzz(func(t *testing.T, code []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		info, err := wasm.Inspect(ctx, code)
		if err != nil {
			if !errors.Is(err, wasm.ErrNotWasm) && !errors.Is(err, wasm.ErrCompile) && !errors.Is(err, wasm.ErrUnsupportedABI) {
				t.Fatalf("unclassified refusal: %v", err)
			}
			return
		}
		if info.ABI != wasm.ABIFunless && info.ABI != wasm.ABIWasi {
			t.Fatalf("accepted with ABI %q", info.ABI)
		}
	})
}

// TestInvalidOutputRecyclesInstance is the regression test for a bug
// FuzzHostABI found: a call whose output was not JSON returned its
// instance to the pool, so a guest that had overwritten its own memory
// (here: __get_input_data over its static data) kept failing every later
// call on that warm instance. Any failed call now discards its instance.
func TestInvalidOutputRecyclesInstance(t *testing.T) {
	e := newEngine(t, wasm.Config{Outbound: fixedOutbound{}})
	m := compile(t, e, "test/abifuzz", wasm.Limits{MemoryPages: 64})
	_, err := invoke(t, e, m, "[0,1024,3,2048,20,0,99,0,5,4005,4179]")
	if !errors.Is(err, wasm.ErrInvalidOutput) {
		t.Fatalf("clobbering call: %v, want ErrInvalidOutput", err)
	}
	for range 3 {
		if res, err := invoke(t, e, m, "[3,0,0]"); err != nil || string(res.Output) != `"ok"` {
			t.Fatalf("next call got the poisoned instance: %v", err)
		}
	}
}

// TestInspectHugeVector is the regression test for a bug FuzzInspect
// found: a module whose data section declares 2^31 entries made wazero
// allocate them all before decoding one, and the core died of OOM. It is
// now refused as not compiling, at once.
func TestInspectHugeVector(t *testing.T) {
	for id := byte(1); id <= 11; id++ {
		if id == 8 {
			continue
		}
		code := []byte{0, 'a', 's', 'm', 1, 0, 0, 0, id, 6, 0xfd, 0xff, 0xff, 0xff, 0x07, 0}
		if _, err := wasm.Inspect(context.Background(), code); !errors.Is(err, wasm.ErrCompile) {
			t.Fatalf("section %d with 2^31 entries: %v, want ErrCompile", id, err)
		}
		if _, err := newEngine(t, wasm.Config{}).Compile(context.Background(), code, wasm.Limits{}); !errors.Is(err, wasm.ErrCompile) {
			t.Fatalf("Compile, section %d with 2^31 entries: %v, want ErrCompile", id, err)
		}
	}
}
