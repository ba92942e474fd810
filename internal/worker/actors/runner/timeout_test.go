package runner

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/edgefaas/edgefaas/internal/actors/wire"
	"github.com/edgefaas/edgefaas/internal/failure"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/wasm"
	"github.com/edgefaas/edgefaas/internal/worker/actors/cache"
)

// TestCompileCountsAgainstTimeout: a call whose code is compiled on its
// way (sent with the call) and whose timeout ends during the compile is a
// timeout, as time waiting for a slot is: the caller's deadline passed.
// (It was answered as the platform's failure, a 500.)
func TestCompileCountsAgainstTimeout(t *testing.T) {
	ctx := context.Background()
	engine, err := wasm.NewEngine(ctx, wasm.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer engine.Close(ctx)
	store, err := cache.NewStore(engine, "", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	run := &Actor{Engine: engine, Store: store, Usage: &Usage{}, Node: "w", Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Ctx: ctx}
	code := testmodules.Read(t, "hello") // a Go module: its compile takes far longer than 1 ms
	res := run.RunContext(ctx, wire.Invoke{ID: 1, Function: "_/hello", Hash: wasm.Hash(code), Code: code, TimeoutMS: 1, Args: []byte(`{}`)})
	if got := failure.FromWire(res.Status); got != failure.Timeout {
		t.Fatalf("answered %s (%q), want a timeout", got, res.Error)
	}
	if !strings.Contains(string(res.Error), "did not finish within its timeout") {
		t.Fatalf("detail %q", res.Error)
	}
}
