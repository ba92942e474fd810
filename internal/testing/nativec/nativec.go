//go:build cgo

// Package nativec runs the C test functions' compute kernels natively,
// compiled from the same source as their wasm, so that benchmarks can put
// a guest's speed beside native C's.
package nativec

/*
#cgo CFLAGS: -O2 -I${SRCDIR}/../../../tests/functions
#include "matmul.h"
*/
import "C"

// Available reports whether the native kernels were built (they need cgo).
const Available = true

// MatMul is tests/functions/matmul.h's matmul_checksum.
func MatMul(n int, seed uint64) float64 {
	return float64(C.matmul_checksum(C.int(n), C.uint64_t(seed)))
}
