//go:build !linux

package wasm

// threadPrio is a no-op: thread priorities are set on Linux only.
type threadPrio struct{}

func (*threadPrio) maybeLower() {}

func guestThread(_ *threadPrio, f func()) { f() }
