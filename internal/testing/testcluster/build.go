package testcluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// Build returns the edgefaas binary, built once per test binary from the
// tree into a temporary directory. It never reuses build/edgefaas: a
// binary made from other sources (another checkout, an earlier commit)
// would let a test pass that the tree fails; with Go's build cache warm, a
// build that changes nothing is a link.
func Build() (string, error) {
	buildOnce.Do(func() {
		root, err := Root()
		if err != nil {
			buildErr = err
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
		// As released (scripts/dist.sh) and as make build builds it:
		// without cgo, so pebble's manually managed memory is Go memory,
		// under the node's memory limit, not C malloc's arenas.
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/edgefaas: %v\n%s", err, out)
		}
	})
	return binary, buildErr
}

var (
	programsMu sync.Mutex
	programs   = map[string]string{}
)

// BuildProgram builds the command in package pkg (e.g. "./tests/cluster/forger")
// with build tags tags, once per test binary, into a temporary directory:
// for test-only programs that never ship (a hostile peer built with a tag
// the release binary is never built with).
func BuildProgram(pkg, tags string) (string, error) {
	programsMu.Lock()
	defer programsMu.Unlock()
	key := pkg + "|" + tags
	if bin, ok := programs[key]; ok {
		return bin, nil
	}
	root, err := Root()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "edgefaas-prog-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-tags", tags, "-o", bin, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -tags %s %s: %v\n%s", tags, pkg, err, out)
	}
	programs[key] = bin
	return bin, nil
}
