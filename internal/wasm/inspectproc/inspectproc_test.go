package inspectproc_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"testing"

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
