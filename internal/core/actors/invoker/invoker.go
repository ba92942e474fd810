package invoker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ergo-services/ergo/gen"

	"github.com/edgefaas/edgefaas/internal/actors/send"
	"github.com/edgefaas/edgefaas/internal/actors/wire"
	"github.com/edgefaas/edgefaas/internal/core/actors/scheduler"
	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/failure"
)

// Invoker implements the API's Invoker over the cluster.
type Invoker struct {
	Table   *scheduler.Table
	Pending *Pending
	Codes   cluster.CodeSource
	// Process returns a live local process by name (the node's
	// ProcessByName): invoker processes may have been restarted.
	Process func(name string) gen.Process
	Routers int
	// DefaultTimeout applies to functions that declare none (60 s); Grace
	// is added while waiting for an answer, for a cold compile (10 s).
	DefaultTimeout, Grace time.Duration
	Log                   *slog.Logger
	// Local, on a single-box node, is the runner of the worker that shares
	// this node (named LocalNode): invocations placed there call its Run
	// directly on the HTTP goroutine, with no message hop at all.
	Local     LocalRunner
	LocalNode string
	// Metrics, if set, counts every answer.
	Metrics *Metrics
	// Sender gives sends to workers a deadline (nil: ergo's Send, which
	// blocks behind a hung peer).
	Sender *send.Sender

	rr atomic.Uint64
}

// LocalRunner runs one invocation in this process: the single-box worker's
// runner (internal/worker/actors/runner), which the core reaches without a
// message hop.
type LocalRunner interface {
	// RunContext runs m under ctx: the caller's cancellation and deadline
	// reach the guest.
	RunContext(ctx context.Context, m wire.Invoke) wire.Result
}

// timers are reused between round trips (a stopped timer's channel is
// empty since Go 1.23, so Reset after Stop is safe).
var timers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// maxAttempts bounds how many workers one invocation tries.
const maxAttempts = 3

// Invoke runs req on a worker. It retries on another worker only when the
// request cannot have run (it could not be sent, or the worker was busy);
// a worker lost mid-call is answered with cluster.ErrWorkerLost at once.
func (iv *Invoker) Invoke(ctx context.Context, req cluster.InvokeRequest) (cluster.InvokeResult, error) {
	start := time.Now()
	res, err := iv.invoke(ctx, req)
	iv.Metrics.observe(resultLabel(err), start)
	return res, err
}

// resultLabel names an outcome for metrics (failure.Table's Metric).
func resultLabel(err error) string { return failure.Of(err).Row().Metric }

func (iv *Invoker) invoke(ctx context.Context, req cluster.InvokeRequest) (cluster.InvokeResult, error) {
	fn := req.Function
	md := fn.Metadata
	timeout := time.Duration(md.TimeoutMS) * time.Millisecond
	if timeout <= 0 {
		timeout = iv.DefaultTimeout
	}
	msg := wire.Invoke{
		Function:     fn.Module + "/" + fn.Name,
		Hash:         fn.Hash,
		Args:         req.Args,
		MemoryPages:  int(max(md.Capacity, 0)) * 16, // MiB → 64 KiB pages
		TimeoutMS:    int(md.TimeoutMS),
		AllowedHosts: wire.JoinList(md.AllowedHosts),
		Owner:        fn.Owner, // pools are per owner (wasm.Invocation.Owner)
	}
	need := scheduler.Need{Hash: fn.Hash, MemoryBytes: int(max(md.Capacity, 0)) << 20, Tag: md.Tag, Script: req.Script}
	var lastErr error
	var last cluster.InvokeResult // what the last worker said, for the record
	for range maxAttempts {
		node, ok, perr := iv.Table.Place(need)
		if perr != nil {
			if lastErr != nil {
				break // a retry found no other valid worker: the first failure is the answer
			}
			return last, &cluster.PlacementError{Message: perr.Error()}
		}
		if !ok {
			break
		}
		if msg.Args == nil && req.LoadArgs != nil {
			args, err := req.LoadArgs()
			if err != nil {
				iv.Table.Finish(node, need.Tag)
				return last, &cluster.RuntimeError{Message: "the core could not read this call's arguments: " + err.Error()}
			}
			msg.Args = args
		}
		res, err := iv.call(ctx, node, msg, timeout+iv.Grace)
		iv.Table.Finish(node, need.Tag)
		last = cluster.InvokeResult{Worker: node}
		if err != nil {
			if ctx.Err() != nil {
				return last, ctx.Err()
			}
			if errors.Is(err, cluster.ErrTimeout) || errors.Is(err, cluster.ErrWorkerLost) {
				return last, err
			}
			lastErr = err
			need.Exclude = exclude(need.Exclude, node)
			iv.Metrics.retried("not_sent")
			continue
		}
		last.Logs, last.Duration = wire.SplitList(res.Logs), time.Duration(res.DurationUS)*time.Microsecond
		if res.Status == statusWorkerLost {
			iv.Log.Warn("worker lost during invocation", "function", msg.Function, "node", node)
			return last, fmt.Errorf("%w: %s went down while running %s; it may or may not have run",
				cluster.ErrWorkerLost, node, msg.Function)
		}
		switch failure.FromWire(res.Status) {
		case failure.OK:
			last.Output = res.Output
			return last, nil
		case failure.Function:
			return last, &cluster.FunctionError{Message: string(res.Error)}
		case failure.Timeout:
			return last, fmt.Errorf("%w on %s: %s", cluster.ErrTimeout, node, res.Error)
		case failure.Busy:
			lastErr = &cluster.BusyError{Reason: string(res.Error)}
			need.Exclude = exclude(need.Exclude, node)
			iv.Metrics.retried("busy")
			continue
		default:
			detail := string(res.Error)
			if detail == "" { // an error always names its cause
				detail = fmt.Sprintf("worker %s answered status %d without a reason", node, res.Status)
			}
			return last, &cluster.RuntimeError{Message: detail}
		}
	}
	if lastErr != nil {
		return last, lastErr
	}
	return last, cluster.ErrNoWorker
}

// exclude adds node to a Need's exclusions, allocating the set only when a
// first attempt failed (the common call never does).
func exclude(set map[string]bool, node string) map[string]bool {
	if set == nil {
		set = make(map[string]bool, maxAttempts)
	}
	set[node] = true
	return set
}

// errNotSent means the request never left: safe to retry elsewhere.
var errNotSent = errors.New("invocation not sent")

// call sends one Invoke to node and waits; a "no code" answer is resent
// once with the code.
func (iv *Invoker) call(ctx context.Context, node string, msg wire.Invoke, wait time.Duration) (wire.Result, error) {
	res, err := iv.roundTrip(ctx, node, msg, wait)
	if err != nil || res.Status != wire.StatusNoCode {
		return res, err
	}
	code, err := iv.Codes.Code(msg.Hash)
	if err != nil {
		return wire.Result{}, fmt.Errorf("code %s for %s: %w", msg.Hash[:12], msg.Function, err)
	}
	msg.Code = code
	res, err = iv.roundTrip(ctx, node, msg, wait)
	if err == nil && res.Status == wire.StatusNoCode {
		// The worker dropped the version again between taking the code
		// and running it (its compiled code closed for room, or the
		// version replaced): nothing ran, so the call is busy there, and
		// is tried elsewhere or answered 429.
		res.Status = wire.StatusBusy
		res.Error = []byte(fmt.Sprintf("worker %s dropped the code of %s again after it was resent (short of memory for compiled code)", node, msg.Function))
	}
	return res, err
}

func (iv *Invoker) roundTrip(ctx context.Context, node string, msg wire.Invoke, wait time.Duration) (wire.Result, error) {
	// The call is counted in flight on node by Table.Place, until invoke's
	// Finish.
	if iv.Local != nil && node == iv.LocalNode {
		res := iv.Local.RunContext(ctx, msg)
		if err := ctx.Err(); err != nil && res.Status != wire.StatusOK {
			return wire.Result{}, err // the client left (or its deadline passed)
		}
		return res, nil
	}
	i := int(iv.rr.Add(1) % uint64(iv.Routers))
	router := iv.Process(RouterName(i))
	if router == nil {
		return wire.Result{}, fmt.Errorf("%w: invoker process %d is restarting", errNotSent, i)
	}
	id, reply := iv.Pending.add(node)
	msg.ID, msg.ReplyTo, msg.ReplyName = id, router.Self(), RouterName(i)
	if err := iv.send(router, gen.ProcessID{Name: wire.RunnerName, Node: node}, msg); err != nil {
		iv.Pending.remove(id)
		var stuck *send.StuckError
		if errors.As(err, &stuck) && stuck.Sent {
			// Queued behind a hung peer: it may still run when the peer
			// wakes, so it is not retried elsewhere.
			return wire.Result{}, fmt.Errorf("%w: %s is not accepting messages (%v); %s may run later",
				cluster.ErrWorkerLost, node, err, msg.Function)
		}
		return wire.Result{}, fmt.Errorf("%w to %s: %v", errNotSent, node, err)
	}
	timer := timers.Get().(*time.Timer)
	timer.Reset(wait)
	defer func() { timer.Stop(); timers.Put(timer) }()
	select {
	case r := <-reply:
		return r, nil
	case <-timer.C:
		iv.Pending.remove(id)
		return wire.Result{}, fmt.Errorf("%w: no answer from %s within %s", cluster.ErrTimeout, node, wait)
	case <-ctx.Done():
		iv.Pending.remove(id)
		// The caller went away: stop the guest and free its slot.
		iv.send(router, gen.ProcessID{Name: wire.RunnerName, Node: node}, wire.Cancel{ID: id, Core: string(router.Self().Node)})
		return wire.Result{}, ctx.Err()
	}
}

func (iv *Invoker) send(from gen.Process, to gen.ProcessID, msg any) error {
	if iv.Sender == nil {
		return from.Send(to, msg)
	}
	return iv.Sender.Send(from, to, msg)
}
