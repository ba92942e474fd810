package testcluster

import (
	"crypto/sha256"
	"encoding/hex"
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
// tree. It never reuses build/edgefaas: a binary made from other sources
// (another checkout, an earlier commit) would let a test pass that the
// tree fails. It builds into a directory of the checkout's own under the
// temporary directory (binDir), the same for every test package: go build
// relinks only when the binary there is not the tree's (it compares build
// IDs), and replaces it by a rename, so a process running the old one is
// undisturbed. A directory per test binary would leave one binary behind
// per run, and link each time.
func Build() (string, error) {
	buildOnce.Do(func() {
		root, err := Root()
		if err != nil {
			buildErr = err
			return
		}
		dir, err := binDir(root, "edgefaas")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "edgefaas")
		cmd := exec.Command("go", "build", "-trimpath", "-o", binary, "./cmd/edgefaas")
		cmd.Dir = root
		// As released (scripts/dist.sh) and as make build builds it:
		// without cgo, so pebble's manually managed memory is Go memory,
		// under the node's memory limit, not C malloc's arenas. With
		// -trimpath too, so the packages compiled here are the ones the
		// release build (tests/arch) and tests/firsthour's build reuse
		// from Go's build cache: other flags would compile them all again.
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
// with build tags tags, once per test binary, into its directory under the
// temporary one (binDir):
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
	dir, err := binDir(root, key)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-trimpath", "-tags", tags, "-o", bin, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build -tags %s %s: %v\n%s", tags, pkg, err, out)
	}
	programs[key] = bin
	return bin, nil
}

// binDir is the directory, under the temporary directory, where the
// checkout at root builds what key names (made if missing).
func binDir(root, key string) (string, error) {
	sum := sha256.Sum256([]byte(root + "\x00" + key))
	dir := filepath.Join(os.TempDir(), "edgefaas-test-bin-"+hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("test binaries: %w", err)
	}
	return dir, nil
}
