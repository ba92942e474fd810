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
		for { // refused busy while a try holds the slot: ask again
			_, err := inspect(ctx, []byte{0, 'a', 's', 'm', 1, 0, 0, 0})
			if !errors.Is(err, wasm.ErrBusy) {
				held <- err
				return
			}
		}
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

// TestMemoryAdmission: a child may take its share plus four times its
// code's size, and it is admitted by that bound against the validators'
// memory (Concurrent × Memory), not as one fixed share: two 16 MiB
// uploads, each bounded at 48 + 64 MiB, do not both run in the 144 MiB of
// three shares; the second is refused busy while the first holds its
// bound, and admitted once it ended. Two small ones still run at once.
func TestMemoryAdmission(t *testing.T) {
	const share = 48 << 20
	inspect := inspectproc.BoundedInspector([]string{os.Args[0]}, spinEnv, inspectproc.Bounds{CPUSeconds: 30, Concurrent: 3, Queue: -1, Memory: share})
	large := append([]byte{0, 'a', 's', 'm', 1, 0, 0, 0}, make([]byte, 16<<20)...)
	small := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	// hold validates code until stopped: refused busy (a try of the test
	// held the memory when it came), it asks again.
	hold := func(code []byte) (stop func()) {
		ctx, cancel := context.WithCancel(context.Background())
		held := make(chan struct{})
		go func() {
			defer close(held)
			for {
				if _, err := inspect(ctx, code); !errors.Is(err, wasm.ErrBusy) {
					return
				}
			}
		}()
		return func() { cancel(); <-held }
	}
	// try makes one call that spins until a short context ends, unless
	// it is refused at once.
	try := func(code []byte) error {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := inspect(ctx, code)
		return err
	}

	stop := hold(large)
	// The holder has its bound as soon as it is admitted; until then the
	// second call may still get it (and spin): retry.
	var err error
	wait.Until(context.Background(), 30*time.Second, "a second large call refused busy", func() bool {
		err = try(large)
		return errors.Is(err, wasm.ErrBusy)
	})
	if !errors.Is(err, wasm.ErrBusy) {
		t.Fatalf("two 16 MiB uploads (112 MiB bounds each) in 144 MiB: the second got %v, want ErrBusy", err)
	}
	stop()
	if err := try(large); errors.Is(err, wasm.ErrBusy) {
		t.Fatalf("after the holder ended: %v", err)
	}

	stop = hold(small)
	defer stop()
	wait.Until(context.Background(), 30*time.Second, "the small holder started", func() bool {
		return errors.Is(try(large), wasm.ErrBusy) // 48 + 112 MiB do not fit: the holder runs
	})
	if err := try(small); errors.Is(err, wasm.ErrBusy) {
		t.Fatalf("two small uploads (48 MiB bounds each) in 144 MiB: %v", err)
	}
}
