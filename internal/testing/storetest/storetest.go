// Package storetest opens real pebble stores for tests: the core's
// storage in a test's own directory, closed when the test ends.
package storetest

import (
	"log/slog"
	"testing"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// Open opens the store at path (a test's temporary directory, or a
// folder in one) or fails the test; it is closed when the test and its
// later cleanups have ended. log may be nil.
func Open(t testing.TB, path string, log *slog.Logger) *storage.Store {
	t.Helper()
	st, err := storage.Open(path, log)
	if err != nil {
		t.Fatalf("open store %s: %v", path, err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store %s: %v", path, err)
		}
	})
	return st
}
