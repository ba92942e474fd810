package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/invocation"
	"github.com/edgefaas/edgefaas/internal/core/storage"
)

const (
	defaultListLimit = 50
	maxListLimit     = 1000
	maxListScan      = 200000 // records examined by one list request
	maxListWait      = 60 * time.Second
)

var knownStatuses = map[string]bool{
	storage.StatusQueued: true, storage.StatusRunning: true, storage.StatusSuccess: true,
	storage.StatusFunctionError: true, storage.StatusRuntimeError: true, storage.StatusTimeout: true,
	storage.StatusBusy: true, storage.StatusNoWorker: true, storage.StatusLost: true,
	storage.StatusCanceled: true,
}

// moduleOwners caches, for one request, each module's owner and creation.
type moduleOwners map[string]storage.Module

// visibleActivation: admins see every record; others the calls they made
// and the calls of functions in modules they own, made since the module
// was created: a module deleted and created again under its name, perhaps
// by another tenant, does not show its predecessor's records.
func (s *Server) visibleActivation(sub storage.Subject, rec storage.Activation, owners moduleOwners) bool {
	if sub.Admin || rec.Subject == sub.Name {
		return true
	}
	if rec.Module == storage.DefaultModule {
		return false
	}
	m, ok := owners[rec.Module]
	if !ok {
		m, _ = s.cfg.Store.GetModule(rec.Module) // zero when gone: visible to no owner
		owners[rec.Module] = m
	}
	if m.Owner == "" || m.Owner != sub.Name {
		return false
	}
	made, ok := invocation.ActivationTime(rec.ID)
	return ok && !made.Before(m.CreatedAt.Truncate(time.Millisecond)) // ids have milliseconds
}

func (s *Server) getActivation(c *call) error {
	id := c.ps.ByName("id")
	notFound := errorf(http.StatusNotFound, "Not Found: activation %q does not exist", id)
	if !invocation.ValidActivationID(id) {
		return notFound
	}
	rec, err := s.cfg.Store.GetActivation(id)
	if errors.Is(err, storage.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return err
	}
	if !s.visibleActivation(c.subject, rec, moduleOwners{}) {
		return notFound
	}
	return reply(c, http.StatusOK, activationView(rec))
}

func activationView(a storage.Activation) storage.Activation {
	if a.Logs == nil {
		a.Logs = []string{}
	}
	return a
}

// listActivations answers GET /v1/activations: newest first, filtered by
// module, function and status, below ?before=ID; with ?after=ID only newer
// ones, and with &wait=SECONDS it waits (long poll) until there is one.
func (s *Server) listActivations(c *call) error {
	q := c.r.URL.Query()
	module, function, status := q.Get("module"), q.Get("function"), q.Get("status")
	if status != "" && !knownStatuses[status] {
		return errorf(http.StatusBadRequest, "Bad Request: status %q is not one of queued, running, success, function_error, runtime_error, timeout, busy, no_worker, lost", status)
	}
	limit := defaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return errorf(http.StatusBadRequest, "Bad Request: limit must be a number from 1 to %d", maxListLimit)
		}
		limit = n
	}
	before, after := q.Get("before"), q.Get("after")
	for name, v := range map[string]string{"before": before, "after": after} {
		if v != "" && !invocation.ValidActivationID(v) {
			return errorf(http.StatusBadRequest, "Bad Request: %s must be an activation id", name)
		}
	}
	var wait time.Duration
	if v := q.Get("wait"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || time.Duration(n)*time.Second > maxListWait || after == "" {
			return errorf(http.StatusBadRequest, "Bad Request: wait must be a number of seconds from 0 to %d, with after=ID", int(maxListWait/time.Second))
		}
		wait = time.Duration(n) * time.Second
	}
	deadline := time.Now().Add(wait)
	for {
		var changed <-chan struct{}
		changed = s.inv.RecordsChanged() // before the scan: no commit is missed
		out := []storage.Activation{}
		owners := moduleOwners{}
		scanned := 0
		err := s.cfg.Store.ScanActivations(before, func(a storage.Activation) bool {
			scanned++
			if after != "" && a.ID <= after {
				return false
			}
			if (module == "" || a.Module == module) && (function == "" || a.Function == function) &&
				(status == "" || a.Status == status) && s.visibleActivation(c.subject, a, owners) {
				out = append(out, activationView(a))
			}
			return len(out) < limit && scanned < maxListScan
		})
		if err != nil {
			return err
		}
		left := time.Until(deadline)
		if len(out) > 0 || left <= 0 || changed == nil {
			return reply(c, http.StatusOK, out)
		}
		timer := time.NewTimer(left)
		select {
		case <-changed:
		case <-timer.C:
		case <-c.r.Context().Done():
			timer.Stop()
			return errorf(499, "client closed the request")
		case <-s.stopping:
			deadline = time.Now()
		}
		timer.Stop()
	}
}
