//go:build !linux

package wasm

import "os"

// peakRSS is 0 where the child's peak is not reported in the same unit
// (or at all): compiling in a child is for Linux workers.
func peakRSS(*os.ProcessState) int64 { return 0 }
