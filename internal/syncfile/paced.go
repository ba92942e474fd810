package syncfile

import (
	"fmt"
	"os"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// PaceBytes is how much of a paced write may be written before the disk is
// handed it: pebble's BytesPerSync for its tables.
const PaceBytes = 512 << 10

// WritePaced writes data to path (created, or truncated), mode perm, and
// syncs it, handing the disk every PaceBytes as it goes (pebble's syncing
// file: sync_file_range on Linux). A file of several MiB written at once
// is, until the disk has it, page cache that memory reclaim cannot drop
// (dirty, then under writeback); in a memory cgroup, which on cgroup v1
// does not throttle its own dirty pages, that took a worker compiling to
// its limit. Paced, about two chunks of it at most are. Unlike Write, it
// is not atomic: callers write a temporary name and rename it.
func WritePaced(path string, data []byte, perm os.FileMode) error {
	f, err := vfs.Default.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(path, perm); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	sf := vfs.NewSyncingFile(f, vfs.SyncingFileOptions{BytesPerSync: PaceBytes})
	// The syncing file paces between writes: one write of all of data
	// would not be paced at all.
	for len(data) > 0 {
		n := min(len(data), PaceBytes)
		if _, err := sf.Write(data[:n]); err != nil {
			sf.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
		data = data[n:]
	}
	if err := sf.Sync(); err != nil {
		sf.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := sf.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}
