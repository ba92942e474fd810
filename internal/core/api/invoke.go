package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/invocation"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/failure"
)

// ActivationHeader carries the activation id on every synchronous
// invocation's answer (the body stays FunLess's).
const ActivationHeader = "X-Edgefaas-Activation"

// invoke answers POST /v1/fn/:mod/:fn: the body decoded once, the call
// handed to the invocation service, its outcome mapped to FunLess's
// answer.
func (s *Server) invoke(c *call) error {
	f, err := s.loadFunction(c)
	if err != nil {
		return err
	}
	if err := s.bodies.admit(c, s.cfg.MaxArgsBytes); err != nil {
		return err
	}
	raw, err := readBody(c, s.cfg.MaxArgsBytes)
	if err != nil {
		return err
	}
	body, err := decodeInvocation(raw)
	if err != nil {
		return err
	}
	script, err := s.inv.Script(f, body.Script, func(sc storage.Script) bool { return visibleScript(c.subject, sc) })
	if err != nil {
		return scriptError(err)
	}
	call := invocation.Call{Function: f, Subject: c.subject.Name, Args: body.Args, Script: script, ScriptName: body.Script,
		Callback: body.Callback, Reload: func() (storage.Function, error) { return s.loadFunction(c) }}
	if wantsAsync(c.r) {
		return s.invokeAsync(c, call)
	}
	if body.Callback != "" {
		return errorf(http.StatusBadRequest, `Bad Request: "callback" is only for asynchronous invocations (?async=true or Prefer: respond-async)`)
	}
	res, err := s.inv.Invoke(c.r.Context(), call)
	if res.ActivationID != "" {
		c.w.Header().Set(ActivationHeader, res.ActivationID)
	}
	if err != nil {
		return s.invokeError(c, res.Function, err)
	}
	out := make([]byte, 0, len(res.Output)+10)
	out = append(append(append(out, `{"data":`...), res.Output...), "}\n"...)
	c.w.Header().Set("Content-Type", "application/json")
	c.w.WriteHeader(http.StatusOK)
	c.w.Write(out)
	return nil
}

// invokeAsync queues the call durably and answers 202 with its id.
func (s *Server) invokeAsync(c *call, call invocation.Call) error {
	id, err := s.inv.Enqueue(call)
	switch {
	case errors.Is(err, invocation.ErrNoQueue):
		return errorf(http.StatusServiceUnavailable, "Service Unavailable: asynchronous invocation is not enabled on this core")
	case errors.Is(err, invocation.ErrQueueFull):
		s.metrics.refusedByQuota(err)
		return &apiError{status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {"1"}},
			detail: "Too Many Requests: " + err.Error() + "; retry shortly"}
	case errors.Is(err, invocation.ErrStopping):
		return errorf(http.StatusServiceUnavailable, "Service Unavailable: the core is shutting down")
	case err != nil:
		return fmt.Errorf("queue %s/%s: %w", call.Function.Module, call.Function.Name, err)
	}
	c.w.Header().Set(ActivationHeader, id)
	return reply(c, http.StatusAccepted, map[string]string{"activation_id": id})
}

// scriptError answers 400 for a script that cannot place the call.
func scriptError(err error) error {
	var se *invocation.ScriptError
	if errors.As(err, &se) {
		return errorf(http.StatusBadRequest, "Bad Request: scheduling: %s", se.Message)
	}
	return err
}

// invokeError answers a failed call: the status and Retry-After are its
// failure.Kind's (failure.Table); the detail is FunLess's text for it.
func (s *Server) invokeError(c *call, f storage.Function, err error) error {
	var ae *apiError
	if errors.As(err, &ae) { // reloading the function failed: 404 and the like
		return ae
	}
	kind := failure.Of(err)
	row := kind.Row()
	var detail string
	switch kind {
	case failure.Function:
		var fe *cluster.FunctionError
		if !errors.As(err, &fe) {
			break
		}
		detail = fe.Message
	case failure.Placement:
		var pe *cluster.PlacementError
		if !errors.As(err, &pe) {
			break
		}
		detail = fmt.Sprintf("Service Unavailable: the APP script placed no call of %s/%s: %s", f.Module, f.Name, pe.Message)
	case failure.Runtime:
		var re *cluster.RuntimeError
		if !errors.As(err, &re) {
			break
		}
		s.log.Warn("function failed", "module", f.Module, "function", f.Name, "err", re.Message)
		detail = fmt.Sprintf("function %s/%s failed: %s", f.Module, f.Name, re.Message)
	case failure.WorkerLost:
		detail = err.Error()
	case failure.NoWorker:
		detail = cluster.ErrNoWorker.Error()
	case failure.Busy:
		detail = fmt.Sprintf("Too Many Requests: every worker able to run %s/%s is busy; retry shortly", f.Module, f.Name)
		if be := (*cluster.BusyError)(nil); errors.As(err, &be) && be.Reason != "" {
			detail = fmt.Sprintf("Too Many Requests: every worker able to run %s/%s is busy (%s); retry shortly", f.Module, f.Name, be.Reason)
		}
	case failure.Timeout:
		detail = fmt.Sprintf("Gateway Timeout: function %s/%s did not finish within its timeout", f.Module, f.Name)
	case failure.Canceled:
		if c.r.Context().Err() != nil { // the client went away; nobody reads the answer
			detail = "client closed the request"
		}
	}
	if detail == "" {
		return fmt.Errorf("invoke %s/%s: %w", f.Module, f.Name, err)
	}
	ae = &apiError{status: row.HTTP, detail: detail}
	if row.RetryAfter {
		ae.header = http.Header{"Retry-After": {"1"}}
	}
	return ae
}

// wantsAsync reports whether the client asked for an asynchronous call:
// ?async=true or Prefer: respond-async.
func wantsAsync(r *http.Request) bool {
	if v := r.URL.Query().Get("async"); v != "" {
		if b, err := strconv.ParseBool(v); err == nil && b {
			return true
		}
	}
	for _, p := range r.Header.Values("Prefer") {
		for _, part := range strings.Split(p, ",") {
			if strings.EqualFold(strings.TrimSpace(part), "respond-async") {
				return true
			}
		}
	}
	return false
}
