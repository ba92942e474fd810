// Package cluster is the seam between the core's service side (the API,
// the invocation service) and its cluster of workers: the API stores
// functions and checks callers; the cluster runs code. Without a cluster,
// invocation answers 503 "No worker available" and change notifications
// are dropped.
package cluster

import (
	"context"
	"encoding/json"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgefaas/edgefaas/internal/core/app"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/failure"
)

// InvokeRequest is one call of a stored function.
type InvokeRequest struct {
	// Function is the stored record: module, name, code hash, ABI, metadata
	// (capacity, timeout, allowed hosts) and version.
	Function storage.Function
	// Args is the JSON object the client sent as "args" ({} if it sent none).
	Args json.RawMessage
	// LoadArgs, when Args is nil, reads them: called once a worker is
	// there to take the call, so that a queued call no worker can take
	// leaves its args on disk.
	LoadArgs func() (json.RawMessage, error)
	// Subject is the name of the caller, for logs and quotas.
	Subject string
	// Script, if set, is the APP script the caller chose
	// ("scheduling":{"language":"app","script":NAME}): it places the call
	// instead of the platform's policy (see internal/core/app).
	Script *app.Script
}

// InvokeResult is a call's outcome. Output is set on success; Worker,
// Logs and Duration are also set with an error when the function ran, so
// that its activation record shows them.
type InvokeResult struct {
	// Output is the function's JSON output; the API answers
	// {"data": Output} without looking at it again. It is valid JSON: the
	// worker's engine checked it, the one place that does (output that is
	// not JSON fails the call there, a *RuntimeError here).
	Output json.RawMessage
	// Worker is the node that ran (or last tried) the call.
	Worker string
	// Logs are the function's log lines, bounded by its log limit.
	Logs []string
	// Duration is the time spent in the guest, when known.
	Duration time.Duration
}

// Invoker runs functions. The cluster implements it; it must be safe for
// concurrent use. Its errors carry their failure.Kind (failure.Of), which
// decides the HTTP status, the record's status and the metric label: the
// errors below, context.Canceled when the caller left, anything else
// failure.Internal.
type Invoker interface {
	Invoke(ctx context.Context, req InvokeRequest) (InvokeResult, error)
}

// Errors an Invoker returns, wrapped or not; each is of the failure.Kind
// its comment names.
var (
	// ErrNoWorker means no connected worker can run the function (none at
	// all, or none with enough free memory for its declared capacity):
	// failure.NoWorker.
	ErrNoWorker = failure.New(failure.NoWorker, "No worker available")
	// ErrBusy means workers exist but all are at their concurrency limit;
	// the client should retry shortly: failure.Busy.
	ErrBusy = failure.New(failure.Busy, "all workers able to run this function are busy")
	// ErrTimeout means the function did not finish within its timeout:
	// failure.Timeout.
	ErrTimeout = failure.New(failure.Timeout, "function timed out")
	// ErrWorkerLost means the worker running the call went down before it
	// answered; the call may or may not have run: failure.WorkerLost.
	ErrWorkerLost = failure.New(failure.WorkerLost, "worker lost")
)

// RuntimeError is a failure of the function in the platform's sandbox
// (trap, memory or output limit, output not JSON), failure.Runtime; Message
// is what the function's author needs to see.
type RuntimeError struct {
	Message string
}

func (e *RuntimeError) Error() string { return e.Message }

// FailureKind implements failure.Kinded.
func (e *RuntimeError) FailureKind() failure.Kind { return failure.Runtime }

// PlacementError is an APP script's refusal to place a call
// (failure.Placement): every block of the function's tag was invalidated
// and the followup is "fail", or the script has no tag for the function.
type PlacementError struct {
	Message string
}

func (e *PlacementError) Error() string { return e.Message }

// FailureKind implements failure.Kinded.
func (e *PlacementError) FailureKind() failure.Kind { return failure.Placement }

// BusyError is a worker's refusal of a call for want of room
// (failure.Busy). Reason is the worker's word on which bound it met (its
// slots and queue, the owner's share of them, its memory budget, its
// mailbox), so the 429 tells the caller, and whoever reads it, which.
type BusyError struct {
	Reason string
}

func (e *BusyError) Error() string { return ErrBusy.Error() + ": " + e.Reason }

// Unwrap makes a BusyError an ErrBusy.
func (e *BusyError) Unwrap() error { return ErrBusy }

// FailureKind implements failure.Kinded.
func (e *BusyError) FailureKind() failure.Kind { return failure.Busy }

// FunctionError is an error the function itself reported (funless ABI:
// __insert_error then __invoke returning 1), failure.Function: the
// client's business, not the platform's.
type FunctionError struct {
	Message string
}

func (e *FunctionError) Error() string { return e.Message }

// FailureKind implements failure.Kinded.
func (e *FunctionError) FailureKind() failure.Kind { return failure.Function }

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

// Cluster is everything the core needs from its cluster of workers.
type Cluster interface {
	Invoker
	Notifier
	Nodes
	// Collector is the cluster's own metrics (invocations, placement),
	// served with the API's on /metrics.
	prometheus.Collector
	// Ready returns nil when at least one worker is connected, else an error
	// saying why not; /readyz answers 503 with it.
	Ready() error
	// Done is closed when the cluster's node stops, by Stop or because its
	// supervision tree gave up; the core then exits, so that the process
	// is restarted rather than serving as a zombie.
	Done() <-chan struct{}
	// Stop stops the node (and a single box's local worker); the store may
	// be closed once it returns.
	Stop()
}
