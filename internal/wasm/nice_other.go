//go:build !linux

package wasm

import "time"

// threadPrio is a no-op: thread priorities are set on Linux only.
type threadPrio struct{}

func (*threadPrio) maybeLower(time.Time) {}

func guestThread(_ *threadPrio, f func()) { f() }
