package inspectproc_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/edgefaas/edgefaas/internal/jsengine"
	"github.com/edgefaas/edgefaas/internal/testing/attacks"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/wasm"
	"github.com/edgefaas/edgefaas/internal/wasm/inspectproc"
)

// The test binary is also the child: with this variable set it serves.
func TestMain(m *testing.M) {
	if os.Getenv("INSPECTPROC_CHILD") == "1" {
		if os.Getenv("INSPECTPROC_SPIN") == "1" {
			// A validator that never finishes (as a module could make it):
			// the same CPU bound as Serve, then spin.
			if err := inspectproc.LimitCPU(); err != nil {
				os.Exit(3)
			}
			for {
			}
		}
		os.Exit(inspectproc.Serve())
	}
	os.Exit(m.Run())
}

var inspect = inspectproc.Inspector([]string{os.Args[0]}, []string{"INSPECTPROC_CHILD=1"})

func TestVerdicts(t *testing.T) {
	ctx := context.Background()
	info, err := inspect(ctx, testmodules.Read(t, "hello"))
	if err != nil || info.ABI != wasm.ABIFunless {
		t.Fatalf("hello: %+v %v", info, err)
	}
	if info, err := inspect(ctx, testmodules.Read(t, "hello-c")); err != nil || info.ABI != wasm.ABIWasi {
		t.Fatalf("hello-c: %+v %v", info, err)
	}
	for _, tc := range []struct {
		name     string
		code     []byte
		sentinel error
		text     string
	}{
		{"text", []byte("hello, I am text"), wasm.ErrNotWasm, "missing magic bytes"},
		{"empty module", []byte{0, 'a', 's', 'm', 1, 0, 0, 0}, wasm.ErrUnsupportedABI, "found exports []"},
		{"garbage", []byte{0, 'a', 's', 'm', 1, 0, 0, 0, 0xff, 0xff}, wasm.ErrCompile, "module does not compile"},
	} {
		_, err := inspect(ctx, tc.code)
		if !errors.Is(err, tc.sentinel) || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// TestDeclaredLengthBomb: a 25-byte module declaring a 4 GiB data segment
// is refused, and the memory is never taken in this process.
func TestDeclaredLengthBomb(t *testing.T) {
	bomb := []byte{0, 'a', 's', 'm', 1, 0, 0, 0,
		5, 3, 1, 0, 1, // memory section: one memory, min 1 page
		11, 10, 1, 0, 0x41, 0, 0x0b, 0xf0, 0xff, 0xff, 0xff, 0x0f, // one data segment of 0xfffffff0 bytes
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := inspect(context.Background(), bomb)
	runtime.ReadMemStats(&after)
	if !errors.Is(err, wasm.ErrCompile) {
		t.Fatalf("error %v, want ErrCompile", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("this process allocated %d MiB validating it", grew>>20)
	}
}

// TestMemoryBound: a module whose validation takes 256 MiB is refused with
// wasm.ErrValidationMemory under a 48 MiB share, by the child's cgroup
// where this process may make one and by the watchdog on its resident
// size where not (forced here); a real module still validates under both.
func TestMemoryBound(t *testing.T) {
	for _, watchdog := range []bool{false, true} {
		name := "cgroup"
		if watchdog {
			name = "watchdog"
		}
		t.Run(name, func(t *testing.T) {
			defer inspectproc.SetNoCgroup(inspectproc.SetNoCgroup(watchdog))
			inspect := inspectproc.BoundedInspector([]string{os.Args[0]}, []string{"INSPECTPROC_CHILD=1"}, inspectproc.Bounds{Memory: 48 << 20})
			_, err := inspect(context.Background(), attacks.LocalsBomb(16, 16<<20))
			t.Log(err)
			if !errors.Is(err, wasm.ErrValidationMemory) || !strings.Contains(err.Error(), "48 MiB") {
				t.Errorf("err %v, want ErrValidationMemory naming the 48 MiB bound", err)
			}
			if info, err := inspect(context.Background(), testmodules.Read(t, "hello-wasi-go")); err != nil || info.ABI != wasm.ABIWasi {
				t.Errorf("hello-wasi-go under the bound: %+v %v", info, err)
			}
			js, err := os.ReadFile("../../../examples/hellojs/hello.js")
			if err != nil {
				t.Fatal(err)
			}
			if info, err := inspect(context.Background(), jsengine.Wrap(js)); err != nil || info.ABI != wasm.ABIJS {
				t.Errorf("hellojs under the bound: %+v %v", info, err)
			}
			big := jsengine.Wrap(append(js, bytes.Repeat([]byte("\nvar x = [1, 2, 3, 'pad'];"), 8<<10)...))
			if info, err := inspect(context.Background(), big); err != nil || info.ABI != wasm.ABIJS {
				t.Errorf("a %d KiB script under the bound: %+v %v", len(big)>>10, info, err)
			}
		})
	}
}
