package core

import (
	"testing"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// TestSplitForLog: a member's log database takes its memory out of the
// store's share, never on top of it; pebble's defaults stay defaults.
func TestSplitForLog(t *testing.T) {
	in := storage.Options{CacheBytes: 64 << 20, MemTableBytes: 8 << 20, MaxOpenFiles: 256}
	st, lg := splitForLog(in)
	if st.CacheBytes+lg.CacheBytes != in.CacheBytes || st.MemTableBytes+lg.MemTableBytes != in.MemTableBytes {
		t.Fatalf("split %+v into %+v and %+v: not the same total", in, st, lg)
	}
	if lg.CacheBytes == 0 || lg.MemTableBytes == 0 || st.MaxOpenFiles != 256 {
		t.Fatalf("split %+v into %+v and %+v", in, st, lg)
	}
	st, lg = splitForLog(storage.Options{})
	if st.CacheBytes != 0 || st.MemTableBytes != 0 || lg.CacheBytes != 0 || lg.MemTableBytes != 0 {
		t.Fatalf("defaults split into %+v and %+v", st, lg)
	}
}
