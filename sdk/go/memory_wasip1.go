//go:build wasip1

package edgefaas

import (
	"os"
	"runtime/debug"
)

// init applies the heap policy (memory.go).
func init() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(GCPercent)
	}
	if _, ok := os.LookupEnv("GOMEMLIMIT"); !ok {
		debug.SetMemoryLimit(MemoryLimit)
	}
}
