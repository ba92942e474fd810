//go:build !unix

package inspectproc

import (
	"fmt"
	"runtime"
)

// Without setrlimit the inspector child cannot bound itself: inspecting
// uploads (a core's job) is not available on this OS. The client commands
// of the same binary (deploy, invoke, ...) never start the child.
const (
	rlimitAS = iota
	rlimitCPU
)

func setRlimit(int, uint64, uint64) error {
	return fmt.Errorf("resource limits are not available on %s: run the core on Linux", runtime.GOOS)
}
