package wasm

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// cacheShareDivisor: by default the compile cache on disk may take a tenth
// of the file system holding it; defaultCacheMaxBytes where that size
// cannot be read.
const (
	cacheShareDivisor    = 10
	defaultCacheMaxBytes = 1 << 30
)

// cacheMaxBytes is the bound of the disk cache in dir: max if set, else a
// tenth of its file system.
func cacheMaxBytes(dir string, max int64) int64 {
	if max != 0 {
		return max
	}
	total, err := fsSize(dir)
	if err != nil || total <= 0 {
		return defaultCacheMaxBytes
	}
	return total / cacheShareDivisor
}

// cacheEntry is one file of the disk cache.
type cacheEntry struct {
	path string
	size int64
	used time.Time
}

// pruneCache deletes the least recently used entries of the disk cache
// (a file's modification time is its last use: wazero's file cache, as
// patched, sets it on every read) while the cache takes more than its
// bound. Every version's directory counts: entries an earlier build wrote
// are never read again and go first. It returns what it deleted.
func (e *Engine) pruneCache() (deleted int, freed int64) {
	dir, bound := e.cfg.CacheDir, e.cacheMax
	if dir == "" || bound < 0 {
		return 0, 0
	}
	e.pruneMu.Lock()
	defer e.pruneMu.Unlock()
	var entries []cacheEntry
	var total int64
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil // a directory, or one that vanished: nothing to count
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		entries = append(entries, cacheEntry{path, info.Size(), info.ModTime()})
		total += info.Size()
		return nil
	})
	if total <= bound {
		return 0, 0
	}
	slices.SortFunc(entries, func(a, b cacheEntry) int { return a.used.Compare(b.used) })
	for _, c := range entries {
		if total <= bound {
			break
		}
		if err := os.Remove(c.path); err != nil && !os.IsNotExist(err) {
			e.log.Warn("pruning the compile cache", "path", c.path, "err", err)
			continue
		}
		total -= c.size
		deleted++
		freed += c.size
	}
	e.stats.cachePruned.Add(int64(deleted))
	e.log.Debug("pruned the compile cache", "entries", deleted, "bytes", freed, "left", total, "bound", bound)
	return deleted, freed
}
