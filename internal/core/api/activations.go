package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
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
	// maxListPageBytes bounds the records one list page holds (by
	// storage.ApproxBytes); listPageReserve is what a page reserves from the body
	// budget: the bound plus one record of the largest logs and result.
	maxListPageBytes = 1 << 20
	listPageReserve  = 3 << 20
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

// awaitPageMemory is for a long poll whose page memory is taken by other
// lists (several polls woken by one commit): it waits for the memory
// until the poll's own deadline, where a plain list is answered 429 at
// once. It reports whether the memory was reserved.
func (s *Server) awaitPageMemory(ctx context.Context, polling bool, n int64, deadline time.Time) bool {
	if !polling {
		return false
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	return s.bodies.sem.Acquire(ctx, n) == nil
}

// listActivations answers GET /v1/activations: newest first, filtered by
// module, function and status, below ?before=ID; with ?after=ID only newer
// ones, and with &wait=SECONDS it waits (long poll) until there is one.
//
// A page holds at most maxListPageBytes of records (one record at least)
// and examines at most maxListScan of them; a page that stops before the
// end of what was asked carries next_before, the id to ask before= with
// (after= and the filters unchanged) for the rest. While a long poll
// waits it is woken only by commits of records of its module and function
// (invocation.RecordWatch), and then it examines only what was committed
// since, not everything down to after= again.
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
	var watch invocation.RecordWatch
	if wait > 0 {
		// Before the first scan: no commit after it is missed.
		if watch = s.inv.WatchRecords(module, function); watch != nil {
			defer watch.Close()
		}
	}
	reserve := min(listPageReserve, s.bodies.budget)
	deadline := time.Now().Add(wait)
	floor := "" // after a wake-up: the oldest id committed since the last scan
	for {
		// One list of a subject scans at a time (listSlots); its page's
		// records are held until they are written: reserve their bytes
		// from the request bodies' budget.
		if err := s.lists.acquire(c.r.Context(), c.subject.Name); err != nil {
			return errorf(499, "client closed the request")
		}
		if !s.bodies.sem.TryAcquire(reserve) && !s.awaitPageMemory(c.r.Context(), watch != nil, reserve, deadline) {
			s.lists.release(c.subject.Name)
			return &apiError{status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {"1"}},
				detail: "Too Many Requests: the core is answering as many lists as its memory allows; retry shortly"}
		}
		out := []storage.Activation{}
		owners := moduleOwners{}
		scanned, held := 0, 0
		next, last := "", ""
		err := s.cfg.Store.ScanActivationsOf(before, module, function, func(id string, rec *storage.Activation) bool {
			if (after != "" && id <= after) || (floor != "" && id < floor) {
				return false
			}
			scanned++
			last = id
			if rec == nil { // another module's or function's
				if scanned >= maxListScan {
					next = last
					return false
				}
				return true
			}
			a := *rec
			if (module == "" || a.Module == module) && (function == "" || a.Function == function) &&
				(status == "" || a.Status == status) && s.visibleActivation(c.subject, a, owners) {
				size := storage.ApproxBytes(a)
				if len(out) > 0 && held+size > maxListPageBytes {
					next = out[len(out)-1].ID
					return false
				}
				held += size
				out = append(out, activationView(a))
			}
			if len(out) >= limit || scanned >= maxListScan {
				next = last
				return false
			}
			return true
		})
		s.metrics.listScanned.Add(float64(scanned))
		if err != nil {
			s.lists.release(c.subject.Name)
			s.bodies.sem.Release(reserve)
			return err
		}
		left := time.Until(deadline)
		if len(out) > 0 || left <= 0 || watch == nil {
			writeList(c.w, out, next, s.log)
			s.lists.release(c.subject.Name)
			s.bodies.sem.Release(reserve)
			return nil
		}
		s.lists.release(c.subject.Name)
		s.bodies.sem.Release(reserve)
		timer := time.NewTimer(left)
		select {
		case <-watch.C():
			if status == "" {
				// A record that did not match before cannot match now
				// unless its status changed, and then it is committed
				// again: start below what was committed since.
				floor = watch.Next()
			} else {
				watch.Next()
			}
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

// writeList streams {"data":[records],"next_before":ID} one record at a
// time: escaping (a control byte in logs is six bytes of JSON) happens on
// the way out, not in a buffer of the whole answer.
func writeList(w http.ResponseWriter, list []storage.Activation, next string, log *slog.Logger) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	bw.WriteString(`{"data":[`)
	for i, a := range list {
		if i > 0 {
			bw.WriteByte(',')
		}
		if err := enc.Encode(a); err != nil {
			// Nothing else can be answered now: the client sees an
			// answer that is not JSON.
			log.Error("encoding an activation record failed", "id", a.ID, "err", err)
			bw.Flush()
			return
		}
	}
	bw.WriteString("]")
	if next != "" {
		bw.WriteString(`,"next_before":"` + next + `"`)
	}
	bw.WriteString("}\n")
	bw.Flush()
}
