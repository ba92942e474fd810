// Package diskfill gives a test a small file system of its own and plays
// another program on it: it fills the disk to a given free space and
// reads what is free, so a test can put a core below its free-space floor
// and let go again.
package diskfill

import (
	"errors"
	"fmt"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// Free is the free space of the file system holding dir.
func Free(t testing.TB, dir string) uint64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// FillTo writes path until the file system holding dir has left bytes
// free (or none: a full disk ends the writing, not the test).
func FillTo(t testing.TB, path, dir string, left uint64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for Free(t, dir) > left+uint64(len(chunk)) {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, unix.ENOSPC) {
				return
			}
			t.Fatalf("fill the disk: %v", err)
		}
	}
}

// Tmpfs mounts a tmpfs of size bytes on a new temporary directory of t's,
// unmounted when t ends, and returns the directory; the error says why it
// could not (the caller skips, or uses a plain directory).
func Tmpfs(t testing.TB, size uint64) (string, error) {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		return dir, fmt.Errorf("mount a tmpfs on %s: %w", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir, nil
}
