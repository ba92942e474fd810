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

	"github.com/edgefaas/edgefaas/actors/runner"
	"github.com/edgefaas/edgefaas/actors/scheduler"
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
	if err == nil {
		return "ok" // before fe, which escapes: no allocation on success
	}
	var fe *api.FunctionError
	switch {
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
	need := scheduler.Need{Hash: fn.Hash, MemoryBytes: int(max(md.Capacity, 0)) << 20, Tag: md.Tag}
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
			if errors.Is(err, api.ErrTimeout) {
				return api.InvokeResult{}, err
			}
			lastErr = err
			exclude(&need, node)
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
			exclude(&need, node)
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

// timers are reused by roundTrip, one per call in flight: since Go 1.23 a
// stopped timer delivers nothing stale, so a pooled one is as good as new.
var timers = sync.Pool{New: func() any {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}}

// exclude marks node as tried; the map is made only when a call is retried.
func exclude(need *scheduler.Need, node string) {
	if need.Exclude == nil {
		need.Exclude = map[string]bool{}
	}
	need.Exclude[node] = true
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
		return iv.Local.Run(msg), nil
	}
	i := int(iv.rr.Add(1) % uint64(iv.Routers))
	router := iv.Process(RouterName(i))
	if router == nil {
		return wire.Result{}, fmt.Errorf("%w: invoker process %d is restarting", errNotSent, i)
	}
	id, reply := iv.Pending.add(node)
	msg.ID, msg.ReplyTo = id, router.Self()
	iv.Table.Started(node)
	defer iv.Table.Finished(node)
	if err := router.Send(gen.ProcessID{Name: runner.Name, Node: node}, msg); err != nil {
		iv.Pending.remove(id)
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
		return wire.Result{}, fmt.Errorf("%w: no answer from %s within %s", api.ErrTimeout, node, wait)
	case <-ctx.Done():
		iv.Pending.remove(id)
		return wire.Result{}, ctx.Err()
	}
}
