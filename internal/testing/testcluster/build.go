package testcluster

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// Root is the repository's root: the directory of go.mod above the
// working directory.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above %s", dir)
		}
		dir = parent
	}
}

// Build returns the edgefaas binary, once per test binary: build/edgefaas
// (what `make build` made) when it is newer than every Go source, go.mod,
// go.sum and patch of the repository, else cmd/edgefaas built afresh into
// a temporary directory.
func Build() (string, error) {
	buildOnce.Do(func() {
		root, err := Root()
		if err != nil {
			buildErr = err
			return
		}
		made := filepath.Join(root, "build", "edgefaas")
		if current(root, made) {
			binary = made
			return
		}
		dir, err := os.MkdirTemp("", "edgefaas-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "edgefaas")
		cmd := exec.Command("go", "build", "-o", binary, "./cmd/edgefaas")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/edgefaas: %v\n%s", err, out)
		}
	})
	return binary, buildErr
}

// current reports whether bin exists and no source it is built from is
// newer. Test files and the build directory do not count.
func current(root, bin string) bool {
	fi, err := os.Stat(bin)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	built := fi.ModTime()
	newer := func(path string) bool {
		st, err := os.Stat(path)
		return err == nil && st.ModTime().After(built)
	}
	if newer(filepath.Join(root, "go.mod")) || newer(filepath.Join(root, "go.sum")) {
		return false
	}
	stale := false
	filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			stale = true // unsure: build
		}
		if stale {
			return filepath.SkipAll
		}
		if d.IsDir() {
			switch rel, _ := filepath.Rel(root, path); {
			case rel == "build", strings.HasPrefix(d.Name(), "."), d.Name() == "testdata", d.Name() == "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		name := d.Name()
		source := strings.HasSuffix(name, ".go") && !strings.HasSuffix(name, "_test.go") ||
			strings.HasPrefix(path, filepath.Join(root, "patches")+string(filepath.Separator))
		if source {
			if info, err := d.Info(); err == nil && info.ModTime().After(built) {
				stale = true
			}
		}
		return nil
	})
	return !stale
}
