package inspectproc_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
	"github.com/edgefaas/edgefaas/internal/wasm"
	"github.com/edgefaas/edgefaas/internal/wasm/inspectproc"
)

var spinEnv = []string{"INSPECTPROC_CHILD=1", "INSPECTPROC_SPIN=1"}

// TestChildCPUBounded: a validation child that spins used to run until the
// upload's context ended (or forever); RLIMIT_CPU now kills it and the
// upload is refused. The context's deadline is far beyond the bound: the
// test asserts which of the two ended the child, not how fast.
func TestChildCPUBounded(t *testing.T) {
	inspect := inspectproc.BoundedInspector([]string{os.Args[0]}, spinEnv, inspectproc.Bounds{CPUSeconds: 1})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err := inspect(ctx, []byte{0, 'a', 's', 'm', 1, 0, 0, 0})
	if ctx.Err() != nil {
		t.Fatalf("the spinning child was stopped by the context, not by its CPU bound: %v", err)
	}
	if !errors.Is(err, wasm.ErrCompile) || !strings.Contains(err.Error(), "bounds") {
		t.Fatalf("err %v, want ErrCompile (exceeded the validator's bounds)", err)
	}
}

// TestConcurrencyBounded: with every slot and the queue taken, a
// validation fails at once with wasm.ErrBusy instead of starting one more
// child.
func TestConcurrencyBounded(t *testing.T) {
	inspect := inspectproc.BoundedInspector([]string{os.Args[0]}, spinEnv, inspectproc.Bounds{CPUSeconds: 30, Concurrent: 1, Queue: -1})
	ctx, cancel := context.WithCancel(context.Background())
	held := make(chan error, 1)
	go func() {
		_, err := inspect(ctx, []byte{0, 'a', 's', 'm', 1, 0, 0, 0})
		held <- err
	}()
	// The spinning call holds the only slot as soon as it started; until
	// then a second call may still get it (and spin): retry.
	var err error
	wait.Until(context.Background(), 30*time.Second, "a second call refused busy", func() bool {
		short, c2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer c2()
		_, err = inspect(short, testmodules.Read(t, "hello-c"))
		return errors.Is(err, wasm.ErrBusy)
	})
	if !errors.Is(err, wasm.ErrBusy) {
		t.Fatalf("with the only slot taken: %v, want ErrBusy", err)
	}
	cancel()
	<-held
	// The slot is free again: the next call gets it (and spins until its
	// context ends) instead of being refused.
	short, c2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer c2()
	if _, err := inspect(short, []byte{0, 'a', 's', 'm', 1, 0, 0, 0}); errors.Is(err, wasm.ErrBusy) {
		t.Fatalf("after the holder ended: %v", err)
	}
}
