//go:build linux || darwin || freebsd

package api

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// diskSpace is the space free for an unprivileged writer, and the total,
// of the file system holding dir, in bytes.
func diskSpace(dir string) (free, total int64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", dir, err)
	}
	bs := int64(st.Bsize) //nolint:unconvert // its type differs by platform
	return int64(st.Bavail) * bs, int64(st.Blocks) * bs, nil
}
