package wasm

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

// TestHeldModuleOutlivesAnotherCompile: a module compiled for a call
// (CompileHeld) stays until the call lets it go, even when a compile for
// another function needs its room: the code budget holds one module and
// one compile, the other compile waits instead of closing the held module
// (before the hold, it closed it at once, and the call that had just
// compiled it found it gone). Released, the module is closed for the next
// compile as before.
func TestHeldModuleOutlivesAnotherCompile(t *testing.T) {
	code := testmodules.Read(t, "hello")
	keep := CodeBytes(len(code))
	work := int64(len(code)) * compileBytesPerWasmByte
	e, err := NewEngine(context.Background(), Config{MemoryBudget: 4 * (keep + work), CodeBudget: keep + work})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	held, release, err := e.CompileHeld(context.Background(), code, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	// The same code with another memory limit is another module of the
	// same size: it fits only in the held module's room.
	other := Limits{MemoryPages: 64}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_, err = e.Compile(ctx, code, other)
	cancel()
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a compile needing the held module's room: %v; want it to wait until its deadline", err)
	}
	if s := e.Stats(); s.CodeEvictions != 0 {
		t.Fatalf("a held module was closed for room: %+v", s)
	}
	if _, err := e.Invoke(context.Background(), held, Invocation{Function: "hello", Input: []byte(`{"name":"held"}`)}); err != nil {
		t.Fatalf("the call that compiled the module: %v", err)
	}
	release()
	if _, err := e.Compile(context.Background(), code, other); err != nil {
		t.Fatalf("the other compile once the module is let go: %v", err)
	}
	if s := e.Stats(); s.CodeEvictions != 1 {
		t.Fatalf("after the release the other compile closed %d modules, want 1: %+v", s.CodeEvictions, s)
	}
}
