package wasm_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// cacheFiles lists the disk cache's entries with their sizes.
func cacheFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	files := map[string]int64{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			info, _ := d.Info()
			files[path] = info.Size()
		}
		return nil
	})
	return files
}

// added is the one entry of after not in before.
func added(t *testing.T, before, after map[string]int64) string {
	t.Helper()
	var got []string
	for p := range after {
		if _, ok := before[p]; !ok {
			got = append(got, p)
		}
	}
	if len(got) != 1 {
		t.Fatalf("a compile added %d cache entries: %v", len(got), got)
	}
	return got[0]
}

// TestDiskCachePrunedLRU: with a bound that holds two of three modules'
// entries, compiling the third deletes the least recently used one: the
// entry read back by a restarted engine (a use) stays, the one only
// written before it goes.
func TestDiskCachePrunedLRU(t *testing.T) {
	dir := t.TempDir()
	compileIn := func(e *wasm.Engine, name string) {
		t.Helper()
		if _, err := e.Compile(context.Background(), testmodules.Read(t, name), wasm.Limits{}); err != nil {
			t.Fatal(err)
		}
	}
	// The entries' sizes, learnt without a bound.
	e := newEngine(t, wasm.Config{CacheDir: dir, CacheMaxBytes: -1})
	before := cacheFiles(t, dir)
	compileIn(e, "test/echo")
	echo := added(t, before, cacheFiles(t, dir))
	before = cacheFiles(t, dir)
	compileIn(e, "test/trap")
	trap := added(t, before, cacheFiles(t, dir))
	before = cacheFiles(t, dir)
	compileIn(e, "test/fail")
	fail := added(t, before, cacheFiles(t, dir))
	sizes := cacheFiles(t, dir)
	e.Close(context.Background())
	if err := os.Remove(fail); err != nil {
		t.Fatal(err)
	}

	// echo is used again (read back by a new engine), trap is not: fail's
	// entry must push trap's out.
	bound := sizes[echo] + max(sizes[fail], sizes[trap])
	e = newEngine(t, wasm.Config{CacheDir: dir, CacheMaxBytes: bound})
	compileIn(e, "test/echo")
	compileIn(e, "test/fail")
	left := cacheFiles(t, dir)
	var total int64
	for _, n := range left {
		total += n
	}
	names := func(m map[string]int64) []string {
		var out []string
		for p := range m {
			out = append(out, filepath.Base(p)[:12])
		}
		slices.Sort(out)
		return out
	}
	t.Logf("bound %d: %d bytes in %v; pruned %d", bound, total, names(left), e.Stats().CachePruned)
	if total > bound {
		t.Errorf("the cache takes %d bytes; bound %d", total, bound)
	}
	if _, ok := left[trap]; ok {
		t.Errorf("the least recently used entry (trap) was kept")
	}
	for name, p := range map[string]string{"echo": echo, "fail": fail} {
		if _, ok := left[p]; !ok {
			t.Errorf("the entry of %s, used more recently, was deleted", name)
		}
	}
	if e.Stats().CachePruned != 1 {
		t.Errorf("CachePruned = %d; want 1", e.Stats().CachePruned)
	}
}
