package wasm

import (
	"errors"
	"fmt"

	"github.com/edgefaas/edgefaas/internal/failure"
)

// Errors an invocation can end with, besides a *FunctionError. Every one is
// wrapped with the function's name and detail; test with errors.Is. Those
// that end a call carry their failure.Kind (failure.Of), which names them
// on the wire, in records, metrics and HTTP statuses.
var (
	// ErrBusy means the engine's concurrency limit and its wait queue are
	// full: the invocation was refused at once rather than dropped.
	ErrBusy = failure.New(failure.Busy, "worker busy: concurrency limit and queue are full")
	// ErrTimeout means the function ran past its wall-clock timeout and was stopped.
	ErrTimeout = failure.New(failure.Timeout, "function timed out")
	// ErrTrap means the guest trapped (unreachable, out-of-bounds access,
	// stack overflow, a Go panic in a reactor). It is a platform error (500),
	// not an error the function reported.
	ErrTrap = failure.New(failure.Runtime, "function trapped")
	// ErrMemoryLimit means the guest exhausted its memory limit.
	ErrMemoryLimit = failure.New(failure.Runtime, "function exceeded its memory limit")
	// ErrInputTooLarge means the arguments exceed the function's input limit.
	ErrInputTooLarge = failure.New(failure.Runtime, "input exceeds the limit")
	// ErrOutputTooLarge means the function produced more output than allowed.
	ErrOutputTooLarge = failure.New(failure.Runtime, "output exceeds the limit")
	// ErrInvalidOutput means the function's output is not JSON.
	ErrInvalidOutput = failure.New(failure.Runtime, "function output is not valid JSON")
	// ErrBadPointer means the guest passed a pointer or length outside its
	// own memory to a host function.
	ErrBadPointer = failure.New(failure.Runtime, "function passed an out-of-bounds pointer to a host call")
	// ErrLimit means a requested per-function limit is above the worker's maximum.
	ErrLimit = failure.New(failure.Runtime, "limit above the worker's maximum")
	// ErrEvicted means the module was evicted (its version replaced or
	// deleted) before this invocation could start; nothing ran. A worker
	// answers it as "no code".
	ErrEvicted = errors.New("function version evicted")
	// ErrClosed means the engine has been closed.
	ErrClosed = errors.New("engine closed")
)

// FunctionError is an error the function itself reported: through
// __insert_error with __invoke returning 1 (funless ABI), or by exiting
// non-zero with a message on stderr (WASI). FunLess answers these with 422.
type FunctionError struct {
	Message string
}

func (e *FunctionError) Error() string { return "function error: " + e.Message }

// FailureKind implements failure.Kinded.
func (e *FunctionError) FailureKind() failure.Kind { return failure.Function }

// abort is raised as a panic from a host function to stop the guest at once
// with a precise error; wazero turns it into the call's error.
type abort struct{ err error }

func (a *abort) Error() string { return a.err.Error() }
func (a *abort) Unwrap() error { return a.err }

func abortf(sentinel error, format string, args ...any) *abort {
	return &abort{fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}
