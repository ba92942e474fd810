package invoker

import (
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/actors/wire"
	"github.com/edgefaas/edgefaas/internal/core/actors/scheduler"
	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/failure"
	"github.com/edgefaas/edgefaas/internal/version"
)

// echoArgs answers each call with its args.
type echoArgs struct{}

func (echoArgs) RunContext(_ context.Context, m wire.Invoke) wire.Result {
	return wire.Result{ID: m.ID, Status: wire.StatusOK, Output: m.Args}
}

// TestArgsLoadedOnlyWhenPlaced: a queued call's args (LoadArgs) are read
// once a worker takes the call, and not at all when none can: a call
// tagged for no worker leaves them on disk.
func TestArgsLoadedOnlyWhenPlaced(t *testing.T) {
	tab := scheduler.NewTable()
	tab.Update(wire.Report{Node: "box", Arch: runtime.GOARCH, OS: runtime.GOOS, Version: version.Get().Version,
		TotalMemory: 1 << 30, FreeMemory: 1 << 30, MaxRunning: 8})
	iv := &Invoker{Table: tab, Pending: NewPending(), Codes: codes{}, Local: echoArgs{}, LocalNode: "box",
		DefaultTimeout: time.Minute, Grace: time.Second}
	loads := 0
	load := func() (json.RawMessage, error) { loads++; return json.RawMessage(`{"x":1}`), nil }

	fn := storage.Function{Module: "_", Name: "nowhere", Hash: strings.Repeat("a", 64), Metadata: storage.Metadata{Tag: "nowhere"}}
	_, err := iv.Invoke(context.Background(), cluster.InvokeRequest{Function: fn, LoadArgs: load})
	if kind := failure.Of(err); kind != failure.NoWorker {
		t.Fatalf("a call tagged for no worker: %v (%v), want no worker", kind, err)
	}
	if loads != 0 {
		t.Errorf("a call no worker can take read its args %d times; want 0", loads)
	}

	fn.Name, fn.Metadata.Tag = "here", ""
	res, err := iv.Invoke(context.Background(), cluster.InvokeRequest{Function: fn, LoadArgs: load})
	if err != nil || string(res.Output) != `{"x":1}` || loads != 1 {
		t.Errorf("a placed call: %v, output %s, args read %d times; want its args, read once", err, res.Output, loads)
	}
}
