//go:build !cgo

package nativec

// Available reports whether the native kernels were built (they need cgo).
const Available = false

// MatMul panics: without cgo there is no native C (check Available).
func MatMul(n int, seed uint64) float64 { panic("nativec: built without cgo") }
