package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// A full disk is an answer, not a crash. Every write that makes the
// database grow passes the guard first: when the file system holding the
// database has less free space than its floor (plus twice the write: the
// WAL and the table it is flushed to), the write is refused with
// ErrDiskFull before pebble sees it, so pebble itself never meets ENOSPC
// from our own writes. Writes that free space (deletes, retention) are
// never refused: they and the compactions that follow them run in the
// headroom the floor keeps. A reserve file beside the database holds more
// space back for what the guard cannot see (the single box's worker cache,
// other programs on the disk): pebble's own disk-full hook
// (vfs.OnDiskFull) removes it when a write of pebble's meets ENOSPC, and
// Open removes it when the disk is already below the floor, so pebble can
// open and recover. The guard makes the reserve again once there is room.
// Why: docs/RATIONALE.md, "Why a free-space floor and a reserve file?".

// ErrDiskFull means the write was refused because the disk holding the
// database is (nearly) full; reads, invocations and deletes still work, and
// writes resume by themselves once space is freed.
var ErrDiskFull = errors.New("the disk holding the database is full: delete functions, modules or records to free space, or grow the disk")

const (
	// minFloor and maxFloor bound the free-space floor, a 32nd of the
	// file system otherwise.
	minFloor = 4 << 20
	maxFloor = 1 << 30
	// reserveName is the reserve file, beside the database directory.
	reserveName = "disk-reserve"
)

// FloorFor is the free space the guard keeps on a file system of total
// bytes: a 32nd of it, at least 4 MiB and at most 1 GiB. The reserve file
// is half of it.
func FloorFor(total uint64) uint64 {
	return min(max(total/32, minFloor), maxFloor)
}

// diskUsage is statfs of the file system holding dir; tests replace it.
var diskUsage = func(fs vfs.FS, dir string) (vfs.DiskUsage, error) { return fs.GetDiskUsage(dir) }

// diskGuard refuses growing writes below the free-space floor and keeps
// the reserve file. It is safe for concurrent use.
type diskGuard struct {
	dir     string // the database directory
	reserve string // the reserve file's path
	fs      vfs.FS // the unwrapped file system, for statfs
	log     *slog.Logger
	usage   func() (vfs.DiskUsage, error)

	full    atomic.Bool  // the last check refused a write
	refused atomic.Int64 // writes refused since Open
	mu      sync.Mutex   // serialises transitions and the reserve's upkeep
	// reserveBytes is the reserve file's size; 0 until the first check.
	reserveBytes uint64
}

func newDiskGuard(dir string, fs vfs.FS, log *slog.Logger) *diskGuard {
	g := &diskGuard{dir: dir, reserve: filepath.Join(filepath.Dir(filepath.Clean(dir)), reserveName), fs: fs, log: log}
	g.usage = func() (vfs.DiskUsage, error) { return diskUsage(g.fs, g.dir) }
	return g
}

// beforeOpen runs before pebble opens: on a disk already below the floor
// the reserve goes, so pebble has room to replay its log and write its
// manifest.
func (g *diskGuard) beforeOpen() {
	u, err := g.usage()
	if err != nil {
		g.log.Warn("free disk space unknown; writes are not guarded", "dir", g.dir, "err", err)
		return
	}
	if u.AvailBytes < FloorFor(u.TotalBytes) {
		g.becameFull("the disk is below its free-space floor at start",
			"free_bytes", u.AvailBytes, "total_bytes", u.TotalBytes)
		g.dropReserve("the disk is below its free-space floor at start")
	}
}

// admit is called before a write of n bytes that makes the database grow:
// ErrDiskFull (wrapped with the figures) when the free space after the
// write would be below the floor. A refusal makes the disk full; it stays
// full until the reserve file is back in place and the write fits above
// the floor plus half of it again (hysteresis: the small activation
// records of running calls do not flip the state at every call). Each
// change between full and not full is logged once.
func (g *diskGuard) admit(n int) error {
	u, err := g.usage()
	if err != nil {
		return nil // unknown: pebble's own errors still stand
	}
	floor, reserve := FloorFor(u.TotalBytes), FloorFor(u.TotalBytes)/2
	need := floor + 2*uint64(max(n, 0))
	full := g.full.Load()
	if full {
		need += floor / 2
	}
	kept := g.keepReserve(u.AvailBytes >= need+reserve, reserve)
	if kept && u.AvailBytes >= need+reserve {
		if u, err = g.usage(); err != nil {
			return nil
		}
	}
	if u.AvailBytes < need || full && !kept {
		g.refused.Add(1)
		g.becameFull("a write would pass the free-space floor",
			"free_bytes", u.AvailBytes, "total_bytes", u.TotalBytes, "floor_bytes", floor)
		return fmt.Errorf("%w (%d bytes free of %d; %d kept free for deletes and compactions)", ErrDiskFull, u.AvailBytes, u.TotalBytes, floor)
	}
	if g.full.Swap(false) {
		g.log.Info("disk space freed: writes accepted again", "dir", g.dir, "free_bytes", u.AvailBytes, "floor_bytes", floor)
	}
	return nil
}

// becameFull marks the disk full, logging the change (once, whatever
// the cause, until space returns).
func (g *diskGuard) becameFull(cause string, attrs ...any) {
	if !g.full.Swap(true) {
		g.log.Warn("disk full: refusing writes until space is freed", append([]any{"dir", g.dir, "cause", cause}, attrs...)...)
	}
}

// keepReserve reports whether the reserve file is in place, making it
// (size bytes) first if room says there is room for it.
func (g *diskGuard) keepReserve(room bool, size uint64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.reserveBytes > 0 {
		return true
	}
	if fi, err := os.Stat(g.reserve); err == nil && uint64(fi.Size()) >= size {
		g.reserveBytes = uint64(fi.Size())
		return true
	}
	if !room {
		return false
	}
	if err := writeReserve(g.reserve, size); err != nil {
		os.Remove(g.reserve)
		g.log.Warn("could not make the disk reserve file", "path", g.reserve, "err", err)
		return false
	}
	g.reserveBytes = size
	return true
}

// dropReserve removes the reserve file, giving its space to pebble.
func (g *diskGuard) dropReserve(why string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reserveBytes = 0
	fi, err := os.Stat(g.reserve)
	if err != nil {
		return
	}
	if err := os.Remove(g.reserve); err != nil {
		g.log.Error("could not remove the disk reserve file", "path", g.reserve, "err", err)
		return
	}
	g.log.Warn("disk reserve released to the database", "reason", why, "bytes", fi.Size())
}

// onDiskFull is pebble's hook (vfs.OnDiskFull): one of its writes met
// ENOSPC. The reserve goes, so pebble's retry finds room, and growing
// writes are refused until space is freed.
func (g *diskGuard) onDiskFull() {
	g.becameFull("the database met ENOSPC")
	g.dropReserve("the database met ENOSPC")
}

// backgroundError is pebble's event for a failed flush or compaction.
// Pebble retries those at once and keeps retrying; ENOSPC is a state the
// guard reports once, not an error per retry.
func (g *diskGuard) backgroundError(err error) {
	if vfs.IsNoSpaceError(err) {
		g.becameFull("a flush or compaction met ENOSPC")
		return
	}
	g.log.Error("database background error", "err", err)
}

// writeReserve writes size zero bytes to path and syncs them, so the
// blocks are really taken (a sparse or fallocated file may not be, on
// every file system).
func writeReserve(path string, size uint64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	zero := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(left, uint64(len(zero)))
		if _, err := f.Write(zero[:n]); err != nil {
			f.Close()
			return fmt.Errorf("write %s: %w", path, err)
		}
		left -= n
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// reclaim compacts the key ranges of deleted code, so the space comes
// back now rather than whenever pebble next compacts there: a delete on a
// full disk is how an operator makes room. The compaction runs in the
// headroom the floor keeps; if it fails, the delete still stands and
// pebble compacts later. Callers hold s.mu and have committed the delete.
func (s *Store) reclaim(hashes []string) {
	for _, h := range hashes {
		k := keyCode(h)
		if err := s.db.Compact(context.Background(), k, append(k[:len(k):len(k)], 0), false); err != nil {
			s.guard.log.Warn("could not compact deleted code; pebble reclaims it later", "hash", h, "err", err.Error())
		}
	}
}

// CheckSpace is the free-space check a growing write of n bytes will meet,
// made early: the API asks it before reading an upload's body. A refusal
// is counted as one.
func (s *Store) CheckSpace(n int64) error {
	return s.guard.admit(int(min(max(n, 0), 1<<40)))
}

// DiskFull reports whether writes are being refused for want of space, and
// how many were refused since Open.
func (s *Store) DiskFull() (full bool, refused int64) {
	return s.guard.full.Load(), s.guard.refused.Load()
}

// flushAfterBytes is the batch size (code, mostly) after which the
// memtable is flushed at once.
const flushAfterBytes = 1 << 20

// flushLarge starts a flush of the memtable after a batch of n bytes, if
// it is large, so that large values (code) sit in tables rather than in
// the WAL. A core killed on a full disk replays and flushes its WAL when
// it opens, before it serves; the reserve file, released before that,
// must hold what the flush writes, and code in the WAL made it larger
// than the reserve (the Open then failed, and pebble v2.1.7 panics in a
// compaction its replay started).
func (s *Store) flushLarge(n int) {
	if n < flushAfterBytes {
		return
	}
	if _, err := s.db.AsyncFlush(); err != nil {
		s.guard.log.Warn("flush after a large write failed", "dir", s.guard.dir, "bytes", n, "err", err)
	}
}
