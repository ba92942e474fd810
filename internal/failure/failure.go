// Package failure declares, once, every way an invocation can end and how
// each layer names it: the status a worker puts on the wire, the HTTP
// status the API answers, the status an activation record keeps and the
// label of the invocation metrics.
//
// Every layer asks this table instead of keeping a switch of its own: the
// engine's and the cluster's errors carry their Kind (Of finds it through
// any wrapping), the runner puts Kind.Wire on its answer, the invoker turns
// a wire status back into a Kind, and the API, the records and the metrics
// read the Kind's row. A new way to fail is one new row.
package failure

import (
	"context"
	"errors"
)

// Kind is one way an invocation ends.
type Kind uint8

// The kinds, in the table's order.
const (
	// OK: the function returned its output.
	OK Kind = iota
	// Function: the function reported an error of its own (FunLess's 422).
	Function
	// Runtime: the sandbox stopped the function (trap, memory or output
	// limit, output that is not JSON) or the platform failed running it.
	Runtime
	// Timeout: the function did not finish within its timeout.
	Timeout
	// Busy: every worker able to run it is at its limit; nothing ran.
	Busy
	// NoWorker: no connected worker can run it (none, or none with room).
	NoWorker
	// Placement: an APP script placed the call nowhere; nothing ran.
	Placement
	// WorkerLost: the worker went down mid-call; it may or may not have run.
	WorkerLost
	// Canceled: the caller left before the answer.
	Canceled
	// Internal: anything else; the core's log has the details.
	Internal
	numKinds
)

// Row is how each layer names one Kind.
type Row struct {
	// Name is the Kind's name in logs and documentation.
	Name string
	// Wire is the status a worker's answer carries (wire.Result.Status);
	// NoWire for kinds only the core decides.
	Wire int
	// HTTP is the API's status for a synchronous call that ended so, and
	// RetryAfter whether the answer carries Retry-After: 1 (nothing ran
	// and a retry shortly may succeed).
	HTTP       int
	RetryAfter bool
	// Record is the status an activation record keeps (storage.Status*).
	Record string
	// Metric is the "result" label of the invocation metrics.
	Metric string
}

// NoWire marks a Kind no worker answers with.
const NoWire = -1

// StatusClientClosed is the HTTP status logged for a caller that left
// (nginx's 499): nobody reads the answer.
const StatusClientClosed = 499

// Table is every Kind's row, indexed by Kind.
var Table = [numKinds]Row{
	OK:         {Name: "ok", Wire: 0, HTTP: 200, Record: "success", Metric: "ok"},
	Function:   {Name: "function error", Wire: 1, HTTP: 422, Record: "function_error", Metric: "function_error"},
	Busy:       {Name: "busy", Wire: 3, HTTP: 429, RetryAfter: true, Record: "busy", Metric: "busy"},
	Runtime:    {Name: "runtime error", Wire: 4, HTTP: 500, Record: "runtime_error", Metric: "error"},
	Timeout:    {Name: "timeout", Wire: 5, HTTP: 504, Record: "timeout", Metric: "timeout"},
	NoWorker:   {Name: "no worker", Wire: NoWire, HTTP: 503, Record: "no_worker", Metric: "no_worker"},
	Placement:  {Name: "no valid worker", Wire: NoWire, HTTP: 503, RetryAfter: true, Record: "no_worker", Metric: "no_valid_worker"},
	WorkerLost: {Name: "worker lost", Wire: NoWire, HTTP: 503, Record: "lost", Metric: "worker_lost"},
	Canceled:   {Name: "canceled", Wire: NoWire, HTTP: StatusClientClosed, Record: "lost", Metric: "canceled"},
	Internal:   {Name: "internal error", Wire: NoWire, HTTP: 500, Record: "runtime_error", Metric: "error"},
}

// Row returns k's row; an unknown Kind reads as Internal.
func (k Kind) Row() Row {
	if k >= numKinds {
		return Table[Internal]
	}
	return Table[k]
}

// String is the Kind's name.
func (k Kind) String() string { return k.Row().Name }

// Kinds lists every Kind, for tests and documentation.
func Kinds() []Kind {
	out := make([]Kind, numKinds)
	for i := range out {
		out[i] = Kind(i)
	}
	return out
}

// FromWire is the Kind of a worker's answer status; a status no Kind
// claims is Runtime (a worker's own failure).
func FromWire(status int) Kind {
	for k, r := range Table {
		if r.Wire == status && r.Wire != NoWire {
			return Kind(k)
		}
	}
	return Runtime
}

// Kinded is an error that knows its Kind.
type Kinded interface {
	error
	FailureKind() Kind
}

// Of is err's Kind: nil is OK; an error in whose chain a Kinded error
// stands has that error's Kind; context's deadline and cancellation are
// Timeout and Canceled; anything else is Internal.
func Of(err error) Kind {
	if err == nil {
		return OK
	}
	var k Kinded
	switch {
	case errors.As(err, &k):
		return k.FailureKind()
	case errors.Is(err, context.DeadlineExceeded):
		return Timeout
	case errors.Is(err, context.Canceled):
		return Canceled
	}
	return Internal
}

// New is a sentinel error of kind k: errors.Is matches it through any
// wrapping, and Of finds its Kind.
func New(k Kind, text string) error { return &sentinel{kind: k, text: text} }

type sentinel struct {
	kind Kind
	text string
}

func (e *sentinel) Error() string     { return e.text }
func (e *sentinel) FailureKind() Kind { return e.kind }
