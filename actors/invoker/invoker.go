package invoker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ergo-services/ergo/gen"

	"github.com/edgefaas/edgefaas/actors/runner"
	"github.com/edgefaas/edgefaas/actors/scheduler"
	"github.com/edgefaas/edgefaas/actors/send"
	"github.com/edgefaas/edgefaas/actors/wire"
	api "github.com/edgefaas/edgefaas/http"
)

// Invoker implements the API's Invoker over the cluster.
type Invoker struct {
	Table   *scheduler.Table
	Pending *Pending
	Codes   api.CodeSource
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
	Local     *runner.Actor
	LocalNode string
	// Metrics, if set, counts every answer.
	Metrics *Metrics
	// Sender gives sends to workers a deadline (nil: ergo's Send, which
	// blocks behind a hung peer).
	Sender *send.Sender

	rr atomic.Uint64
}

// maxAttempts bounds how many workers one invocation tries.
const maxAttempts = 3

// Invoke runs req on a worker. It retries on another worker only when the
// request cannot have run (it could not be sent, or the worker was busy);
// a worker lost mid-call is answered with api.ErrWorkerLost at once.
func (iv *Invoker) Invoke(ctx context.Context, req api.InvokeRequest) (api.InvokeResult, error) {
	start := time.Now()
	res, err := iv.invoke(ctx, req)
	iv.Metrics.observe(resultLabel(err), start)
	return res, err
}

// resultLabel names an outcome for metrics.
func resultLabel(err error) string {
	var fe *api.FunctionError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &fe):
		return "function_error"
	case errors.Is(err, api.ErrTimeout):
		return "timeout"
	case errors.Is(err, api.ErrBusy):
		return "busy"
	case errors.Is(err, api.ErrNoWorker):
		return "no_worker"
	case errors.Is(err, api.ErrWorkerLost):
		return "worker_lost"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "error"
}

func (iv *Invoker) invoke(ctx context.Context, req api.InvokeRequest) (api.InvokeResult, error) {
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
	}
	need := scheduler.Need{Hash: fn.Hash, MemoryBytes: int(max(md.Capacity, 0)) << 20, Tag: md.Tag, Exclude: map[string]bool{}}
	var lastErr error
	for range maxAttempts {
		node, _, ok := iv.Table.Pick(need)
		if !ok {
			break
		}
		res, err := iv.call(ctx, node, msg, timeout+iv.Grace)
		if err != nil {
			if ctx.Err() != nil {
				return api.InvokeResult{}, ctx.Err()
			}
			if errors.Is(err, api.ErrTimeout) || errors.Is(err, api.ErrWorkerLost) {
				return api.InvokeResult{}, err
			}
			lastErr = err
			need.Exclude[node] = true
			iv.Metrics.retried("not_sent")
			continue
		}
		switch res.Status {
		case wire.StatusOK:
			return api.InvokeResult{Output: res.Output}, nil
		case wire.StatusFunctionError:
			return api.InvokeResult{}, &api.FunctionError{Message: string(res.Error)}
		case wire.StatusTimeout:
			return api.InvokeResult{}, fmt.Errorf("%w on %s: %s", api.ErrTimeout, node, res.Error)
		case wire.StatusBusy:
			lastErr = fmt.Errorf("%w: %s", api.ErrBusy, res.Error)
			need.Exclude[node] = true
			iv.Metrics.retried("busy")
			continue
		case statusWorkerLost:
			iv.Log.Warn("worker lost during invocation", "function", msg.Function, "node", node)
			return api.InvokeResult{}, fmt.Errorf("%w: %s went down while running %s; it may or may not have run",
				api.ErrWorkerLost, node, msg.Function)
		default:
			return api.InvokeResult{}, &api.RuntimeError{Message: string(res.Error)}
		}
	}
	if lastErr != nil {
		return api.InvokeResult{}, lastErr
	}
	return api.InvokeResult{}, api.ErrNoWorker
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
	return iv.roundTrip(ctx, node, msg, wait)
}

func (iv *Invoker) roundTrip(ctx context.Context, node string, msg wire.Invoke, wait time.Duration) (wire.Result, error) {
	if iv.Local != nil && node == iv.LocalNode {
		iv.Table.Started(node)
		defer iv.Table.Finished(node)
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
	iv.Table.Started(node)
	defer iv.Table.Finished(node)
	if err := iv.send(router, gen.ProcessID{Name: runner.Name, Node: node}, msg); err != nil {
		iv.Pending.remove(id)
		var stuck *send.StuckError
		if errors.As(err, &stuck) && stuck.Sent {
			// Queued behind a hung peer: it may still run when the peer
			// wakes, so it is not retried elsewhere.
			return wire.Result{}, fmt.Errorf("%w: %s is not accepting messages (%v); %s may run later",
				api.ErrWorkerLost, node, err, msg.Function)
		}
		return wire.Result{}, fmt.Errorf("%w to %s: %v", errNotSent, node, err)
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case r := <-reply:
		return r, nil
	case <-timer.C:
		iv.Pending.remove(id)
		return wire.Result{}, fmt.Errorf("%w: no answer from %s within %s", api.ErrTimeout, node, wait)
	case <-ctx.Done():
		iv.Pending.remove(id)
		// The caller went away: stop the guest and free its slot.
		iv.send(router, gen.ProcessID{Name: runner.Name, Node: node}, wire.Cancel{ID: id, Core: string(router.Self().Node)})
		return wire.Result{}, ctx.Err()
	}
}

func (iv *Invoker) send(from gen.Process, to gen.ProcessID, msg any) error {
	if iv.Sender == nil {
		return from.Send(to, msg)
	}
	return iv.Sender.Send(from, to, msg)
}
