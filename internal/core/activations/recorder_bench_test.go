package activations_test

import (
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/activations"
)

// BenchmarkIDs is the id every synchronous answer carries.
func BenchmarkIDs(b *testing.B) {
	ids := activations.NewIDs()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		ids.New(now)
	}
}
