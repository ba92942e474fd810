//go:build !linux

package attacks

import "errors"

// lowerOpenFiles needs Linux's prlimit.
func lowerOpenFiles(pid, n int) (restore func(), err error) {
	return nil, errors.New("lowering another process's open files limit needs Linux")
}
