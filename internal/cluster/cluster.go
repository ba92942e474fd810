package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/app"
	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// This file is the seam between the API and the cluster of workers. The API
// stores functions and checks callers; the cluster runs code. Without a
// cluster, invocation answers 503 "No worker available" and change
// notifications are dropped.

// InvokeRequest is one call of a stored function.
type InvokeRequest struct {
	// Function is the stored record: module, name, code hash, ABI, metadata
	// (capacity, timeout, allowed hosts) and version.
	Function storage.Function
	// Args is the JSON object the client sent as "args" ({} if it sent none).
	Args json.RawMessage
	// Subject is the name of the caller, for logs and quotas.
	Subject string
	// Script, if set, is the APP script the caller chose
	// ("scheduling":{"language":"app","script":NAME}): it places the call
	// instead of the platform's policy (see actors/scheduler/app).
	Script *app.Script
}

// InvokeResult is a call's outcome. Output is set on success; Worker,
// Logs and Duration are also set with an error when the function ran, so
// that its activation record shows them.
type InvokeResult struct {
	// Output is the function's JSON output; the API answers
	// {"data": Output} without looking at it again. It is valid JSON: the
	// worker's engine checked it once (output that is not JSON fails the
	// call there with wasm.ErrInvalidOutput, a *RuntimeError here).
	Output json.RawMessage
	// Worker is the node that ran (or last tried) the call.
	Worker string
	// Logs are the function's log lines, bounded by its log limit.
	Logs []string
	// Duration is the time spent in the guest, when known.
	Duration time.Duration
}

// Invoker runs functions. The cluster implements it; it must be safe for
// concurrent use. Its errors map to HTTP statuses:
//
//	ErrNoWorker        503 {"errors":{"detail":"No worker available"}}
//	*FunctionError     422 with the function's own message
//	ErrBusy            429 with Retry-After: 1
//	ErrTimeout         504
//	ErrWorkerLost      503 with the error's text
//	*RuntimeError      500 with its message
//	*PlacementError    503 with its message
//	context.Canceled   499-style: the client left, nothing is written
//	anything else      500
type Invoker interface {
	Invoke(ctx context.Context, req InvokeRequest) (InvokeResult, error)
}

// Errors an Invoker returns (wrapped or not) to choose the HTTP status.
var (
	// ErrNoWorker means no connected worker can run the function (none at
	// all, or none with enough free memory for its declared capacity).
	ErrNoWorker = errors.New("No worker available")
	// ErrBusy means workers exist but all are at their concurrency limit;
	// the client should retry shortly.
	ErrBusy = errors.New("all workers able to run this function are busy")
	// ErrTimeout means the function did not finish within its timeout.
	ErrTimeout = errors.New("function timed out")
	// ErrWorkerLost means the worker running the call went down before it
	// answered; the call may or may not have run. 503 with the error's text.
	ErrWorkerLost = errors.New("worker lost")
)

// RuntimeError is a failure of the function in the platform's sandbox
// (trap, memory or output limit, output not JSON): 500 with Message as the
// detail, since it is what the function's author needs to see.
type RuntimeError struct {
	Message string
}

func (e *RuntimeError) Error() string { return e.Message }

// PlacementError is an APP script's refusal to place a call: every block
// of the function's tag was invalidated and the followup is "fail", or the
// script has no tag for the function. 503 with Message as the detail (and
// Retry-After: 1, since invalidation rules follow load).
type PlacementError struct {
	Message string
}

func (e *PlacementError) Error() string { return e.Message }

// FunctionError is an error the function itself reported (funless ABI:
// __insert_error then __invoke returning 1). It is the client's business,
// not the platform's: 422 with Message as the detail.
type FunctionError struct {
	Message string
}

func (e *FunctionError) Error() string { return e.Message }

// EventKind says what happened to a function.
type EventKind string

// Kinds of FunctionEvent.
const (
	FunctionCreated EventKind = "created"
	FunctionUpdated EventKind = "updated" // new code and/or metadata, or its module renamed
	FunctionDeleted EventKind = "deleted" // also for every function of a deleted module
)

// FunctionEvent tells the cluster about a committed change, so it can push
// new code to workers and evict what is no longer used.
type FunctionEvent struct {
	Kind EventKind
	// Function is the record after the change; for FunctionDeleted, the
	// deleted record.
	Function storage.Function
	// Previous is the record before an update (its Hash is the code to
	// evict, its Module the old module after a rename); nil otherwise.
	Previous *storage.Function
	// WaitForWorkers is the client's wait_for_workers (default true): when
	// true the API waits for FunctionChanged to return before answering, and
	// the notifier should wait until workers hold the code; when false it
	// should only start the distribution.
	WaitForWorkers bool
}

// Notifier is told about every committed function change. Its error is
// logged and does not fail the request: the change is already durable and
// workers also fetch missing code on demand.
type Notifier interface {
	FunctionChanged(ctx context.Context, ev FunctionEvent) error
}

// CodeSource gives code by its sha256 hex hash; *storage.Store implements
// it. The cluster uses it to send code to workers that lack it.
type CodeSource interface {
	Code(hash string) ([]byte, error)
}

var _ CodeSource = (*storage.Store)(nil)

// Cluster is everything the API needs from a cluster of workers.
type Cluster interface {
	Invoker
	Notifier
	// Ready returns nil when at least one worker is connected, else an error
	// saying why not; /readyz answers 503 with it.
	Ready() error
}
