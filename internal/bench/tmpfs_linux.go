package bench

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs of size bytes on dir (made if missing): a
// small file system of the bench's own (it runs as root; the error says
// why not otherwise).
func mountTmpfs(dir string, size int64) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		return fmt.Errorf("mount a %d MiB tmpfs on %s: %w", size>>20, dir, err)
	}
	return nil
}

// unmount detaches the file system mounted on dir.
func unmount(dir string) { unix.Unmount(dir, unix.MNT_DETACH) }
