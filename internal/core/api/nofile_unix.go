//go:build unix

package api

import "golang.org/x/sys/unix"

// nofile is the process's soft limit of open file descriptors now; 0 if
// unknown.
func nofile() uint64 {
	var r unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &r) != nil {
		return 0
	}
	return uint64(r.Cur) //nolint:unconvert // its type differs by platform
}
