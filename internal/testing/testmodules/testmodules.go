// Package testmodules gives tests the real compiled .wasm modules: the
// examples and the hostile functions of tests/functions. It runs
// `make examples testmodules` once per test binary (make rebuilds only
// what changed), so `go test` works on its own and under `make test`.
package testmodules

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	once    sync.Once
	root    string
	onceErr error
)

// Root returns the repository's root directory.
func Root(t testing.TB) string {
	t.Helper()
	build(t)
	return root
}

func build(t testing.TB) {
	t.Helper()
	if err := buildOnce(); err != nil {
		t.Fatal(err)
	}
}

// buildOnce finds the root and runs make, once per test binary.
func buildOnce() error {
	once.Do(func() {
		dir, err := os.Getwd()
		if err != nil {
			onceErr = err
			return
		}
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				onceErr = fmt.Errorf("go.mod not found above the test's directory")
				return
			}
			dir = parent
		}
		root = dir
		cmd := exec.Command("make", "-s", "examples", "testmodules")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			onceErr = fmt.Errorf("make examples testmodules: %v\n%s", err, out)
		}
	})
	return onceErr
}

// Path returns the path of a built module: an example by name ("hello",
// "hello-c") or a test function as "test/NAME".
func Path(t testing.TB, name string) string {
	t.Helper()
	build(t)
	return filepath.Join(root, "build", "wasm", name+".wasm")
}

// Locate is Path for callers with no testing.TB (TestMain, Example
// functions): it returns the module's path, or why it could not be built
// or is missing.
func Locate(name string) (string, error) {
	if err := buildOnce(); err != nil {
		return "", err
	}
	p := filepath.Join(root, "build", "wasm", name+".wasm")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("module %s: %w", name, err)
	}
	return p, nil
}

// Read returns a built module's bytes.
func Read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(Path(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
