//go:build unix

package inspectproc

import "syscall"

// The resources the inspector child bounds itself by.
const (
	rlimitAS  = syscall.RLIMIT_AS
	rlimitCPU = syscall.RLIMIT_CPU
)

// setRlimit sets the calling process's soft and hard limit on resource.
func setRlimit(resource int, soft, hard uint64) error {
	return syscall.Setrlimit(resource, &syscall.Rlimit{Cur: soft, Max: hard})
}
