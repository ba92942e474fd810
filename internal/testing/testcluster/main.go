package testcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// RunMain is a suite's TestMain body: it makes a scratch directory, runs
// setup in it, the tests, then the teardown setup returned (if any), and
// removes the directory (named after the suite's last element, as in
// edgefaas-cli-test-*). It returns the exit code for os.Exit: the tests'
// own, or 1 when the directory, setup or teardown fail; those failures are
// written to stderr prefixed with the suite's name ("tests/cli setup: ...").
func RunMain(m *testing.M, suite string, setup func(dir string) (teardown func() error, err error)) int {
	dir, err := os.MkdirTemp("", "edgefaas-"+filepath.Base(suite)+"-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	teardown, err := setup(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, suite+" setup:", err)
		return 1
	}
	code := m.Run()
	if teardown != nil {
		if err := teardown(); err != nil {
			fmt.Fprintln(os.Stderr, suite+" teardown:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}
