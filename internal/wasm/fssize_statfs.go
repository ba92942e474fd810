//go:build linux || darwin || freebsd

package wasm

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// fsSize is the size of the file system holding dir, in bytes.
func fsSize(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return int64(st.Blocks) * int64(st.Bsize), nil //nolint:unconvert // the types differ by platform
}
