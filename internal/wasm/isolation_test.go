package wasm_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/matrix"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// TestSpinDoesNotStall runs a function that never returns beside a stream
// of hello invocations and forced garbage collections. Without
// CloseOnContextDone a spinning guest blocks the GC's stop-the-world and so
// every goroutine; here each hello must finish while the spinner still
// runs, and the slowest hello must stay far below the spinner's run time.
func TestSpinDoesNotStall(t *testing.T) {
	e := newEngine(t, wasm.Config{})
	const spinFor = 3 * time.Second
	spin := compile(t, e, "test/spin", wasm.Limits{Timeout: spinFor})
	hello := compile(t, e, "hello", wasm.Limits{})
	if _, err := invoke(t, e, hello, `{}`); err != nil { // warm up
		t.Fatal(err)
	}

	spinDone := make(chan time.Duration, 1)
	start := time.Now()
	go func() {
		_, err := invoke(t, e, spin, `{}`)
		if !errors.Is(err, wasm.ErrTimeout) {
			t.Errorf("spin: %v", err)
		}
		spinDone <- time.Since(start)
	}()
	wait.For(t, time.Minute, "the spinner runs", func() bool { return e.Stats().Running >= 1 })

	var slowest time.Duration
	const n = 50
	for i := range n {
		if i%10 == 0 {
			runtime.GC()
		}
		t0 := time.Now()
		if _, err := invoke(t, e, hello, `{"name":"neighbour"}`); err != nil {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(t0))
	}
	helloDone := time.Since(start)
	spinTook := <-spinDone
	t.Logf("spinner ran %s; %d hellos done after %s, slowest %s", spinTook, n, helloDone, slowest)
	if helloDone >= spinTook {
		t.Fatalf("hellos finished after the spinner (%s >= %s): they were stalled", helloDone, spinTook)
	}
	if slowest > spinTook/10 {
		t.Fatalf("slowest hello %s is more than a tenth of the spinner's %s", slowest, spinTook)
	}
}

// TestCompileCacheSurvivesRestart compiles with a fresh cache directory,
// closes the engine, and compiles again in a new engine on the same
// directory: the second compile must read the cache (no new cache files,
// and a small fraction of the first compile's time).
func TestCompileCacheSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	code := testmodules.Read(t, "matrixmult")
	compileIn := func() time.Duration {
		e, err := wasm.NewEngine(context.Background(), wasm.Config{CacheDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close(context.Background())
		t0 := time.Now()
		m, err := e.Compile(context.Background(), code, wasm.Limits{})
		took := time.Since(t0)
		if err != nil {
			t.Fatal(err)
		}
		res, err := e.Invoke(context.Background(), m, wasm.Invocation{Input: []byte(`{"n":3}`)})
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(map[string]any{"n": 3, "checksum": matrix.Multiply(3, 42)})
		jsonEqual(t, res.Output, string(want))
		return took
	}
	first := compileIn()
	files := countFiles(t, dir)
	second := compileIn()
	t.Logf("compile: first %s, after restart %s, %d cache files", first, second, files)
	if files == 0 {
		t.Fatal("nothing was written to the cache directory")
	}
	if again := countFiles(t, dir); again != files {
		t.Fatalf("the restarted engine wrote %d new cache files: it compiled again", again-files)
	}
	if second*3 > first {
		t.Fatalf("compile after restart took %s, more than a third of the first %s", second, first)
	}
}

func countFiles(t *testing.T, dir string) int {
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}
