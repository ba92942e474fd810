package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgefaas/edgefaas/internal/cluster"
	"github.com/edgefaas/edgefaas/internal/core/sinks"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/core/triggers"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// routes builds the router: FunLess's v1 API plus edgefaas's additions.
func (s *Server) routes() *httprouter.Router {
	r := httprouter.New()
	s.router = r
	r.HandleMethodNotAllowed = true
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.wrap("unmatched", "", func(w http.ResponseWriter, req *http.Request, _ httprouter.Params) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("Not Found: no endpoint %s %s", req.Method, req.URL.Path))
		})(w, req, nil)
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		s.wrap("unmatched", "", func(w http.ResponseWriter, req *http.Request, _ httprouter.Params) {
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("Method Not Allowed: %s is not supported on %s (allowed: %s)", req.Method, req.URL.Path, w.Header().Get("Allow")))
		})(w, req, nil)
	})
	r.PanicHandler = nil // wrap recovers

	s.handle(http.MethodGet, "/v1/", public, s.root)
	s.handle(http.MethodGet, "/healthz", public, s.healthz)
	s.handle(http.MethodGet, "/readyz", public, s.readyz)
	metricsAccess := user
	if s.cfg.PublicMetrics {
		metricsAccess = public
	}
	prom := promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{s}})
	s.handle(http.MethodGet, "/metrics", metricsAccess, func(c *call) error { prom.ServeHTTP(c.w, c.r); return nil })

	s.handle(http.MethodGet, "/v1/admin/subjects", admin, s.listSubjects)
	s.handle(http.MethodPost, "/v1/admin/subjects", admin, s.createSubject)
	s.handle(http.MethodPut, "/v1/admin/subjects/:name", admin, s.rotateSubject)
	s.handle(http.MethodDelete, "/v1/admin/subjects/:name", admin, s.revokeSubject)
	s.handle(http.MethodGet, "/v1/admin/subjects/:name/egress", admin, s.getSubjectEgress)
	s.handle(http.MethodPut, "/v1/admin/subjects/:name/egress", admin, s.setSubjectEgress)
	s.handle(http.MethodDelete, "/v1/admin/subjects/:name/egress", admin, s.clearSubjectEgress)

	s.handle(http.MethodGet, "/v1/nodes", user, s.listNodes)
	s.handle(http.MethodPost, "/v1/nodes", admin, s.connectNode)
	s.handle(http.MethodPost, "/v1/nodes/join", public, s.joinNode)
	s.handle(http.MethodPost, "/v1/admin/join-tokens", admin, s.createJoinToken)
	s.handle(http.MethodGet, "/v1/admin/node-certificates", admin, s.listNodeCerts)
	s.handle(http.MethodPost, "/v1/admin/nodes/:name/revoke", admin, s.nodeAdmin("revoke"))
	s.handle(http.MethodPost, "/v1/admin/nodes/:name/rotate", admin, s.nodeAdmin("rotate"))

	s.handle(http.MethodGet, "/v1/fn", user, s.listModules)
	s.handle(http.MethodPost, "/v1/fn", user, s.createModule)
	s.handle(http.MethodGet, "/v1/fn/:mod", user, s.getModule)
	s.handle(http.MethodPut, "/v1/fn/:mod", user, s.renameModule)
	s.handle(http.MethodDelete, "/v1/fn/:mod", user, s.deleteModule)
	s.handle(http.MethodPost, "/v1/fn/:mod", user, s.createFunction)
	s.handle(http.MethodGet, "/v1/fn/:mod/:fn", user, s.getFunction)
	s.handle(http.MethodPut, "/v1/fn/:mod/:fn", user, s.updateFunction)
	s.handle(http.MethodDelete, "/v1/fn/:mod/:fn", user, s.deleteFunction)
	s.handle(http.MethodPost, "/v1/fn/:mod/:fn", user, s.invoke)

	s.handle(http.MethodGet, "/v1/scripts/app", user, s.listScripts)
	s.handle(http.MethodPost, "/v1/scripts/app", user, s.createScript)
	s.handle(http.MethodGet, "/v1/scripts/app/:name", user, s.getScript)
	s.handle(http.MethodDelete, "/v1/scripts/app/:name", user, s.deleteScript)

	s.handle(http.MethodGet, "/v1/activations", user, s.listActivations)
	s.handle(http.MethodGet, "/v1/activations/:id", user, s.getActivation)
	return r
}

// slogPrinter adapts the logger to promhttp's error log.
type slogPrinter struct{ s *Server }

func (p slogPrinter) Println(v ...any) { p.s.log.Warn("metrics: " + fmt.Sprint(v...)) }

// ---- public ----

func (s *Server) root(c *call) error {
	c.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(c.w, "edgefaas is up and running\n")
	return nil
}

func (s *Server) healthz(c *call) error {
	c.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(c.w, "ok\n")
	return nil
}

func (s *Server) readyz(c *call) error {
	select {
	case <-s.stopping:
		return errorf(http.StatusServiceUnavailable, "Not ready: the core is shutting down")
	default:
	}
	// O(1): /readyz is public, so it must not scan the store (Stats does).
	if err := s.cfg.Store.Probe(); err != nil {
		return errorf(http.StatusServiceUnavailable, "Not ready: storage is not readable: %v", err)
	}
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			return errorf(http.StatusServiceUnavailable, "Not ready: %v", err)
		}
	}
	c.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(c.w, "ready\n")
	return nil
}

// ---- subjects (admin) ----

type subjectView struct {
	Name    string `json:"name"`
	Admin   bool   `json:"admin"`
	Revoked bool   `json:"revoked"`
}

type tokenView struct {
	Name  string `json:"name"`
	Token string `json:"token"`
}

func (s *Server) listSubjects(c *call) error {
	subs, err := s.cfg.Store.ListSubjects()
	if err != nil {
		return err
	}
	out := make([]subjectView, 0, len(subs))
	for _, sub := range subs {
		out = append(out, subjectView{Name: sub.Name, Admin: sub.Admin, Revoked: sub.Revoked()})
	}
	writeJSON(c.w, http.StatusOK, data(out))
	return nil
}

func (s *Server) createSubject(c *call) error {
	raw, err := readBody(c, maxJSONBodyBytes)
	if err != nil {
		return err
	}
	name, err := decodeNamed(raw, "subject", "subject")
	if err != nil {
		return err
	}
	token, err := s.cfg.Store.CreateSubject(name, false)
	if errors.Is(err, storage.ErrExists) {
		return errorf(http.StatusConflict, "Conflict: subject %q already exists; rotate its token with PUT /v1/admin/subjects/%s", name, name)
	}
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusCreated, data(tokenView{Name: name, Token: token}))
	return nil
}

func (s *Server) rotateSubject(c *call) error {
	name := c.ps.ByName("name")
	token, err := s.cfg.Store.RotateToken(name)
	if errors.Is(err, storage.ErrNotFound) {
		return errorf(http.StatusNotFound, "Not Found: subject %q does not exist", name)
	}
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, data(tokenView{Name: name, Token: token}))
	return nil
}

func (s *Server) revokeSubject(c *call) error {
	name := c.ps.ByName("name")
	err := s.cfg.Store.RevokeToken(name)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return errorf(http.StatusNotFound, "Not Found: subject %q does not exist", name)
	case errors.Is(err, storage.ErrAdminRevoke):
		return errorf(http.StatusBadRequest, "Bad Request: subject %q is an admin; its token cannot be revoked, rotate it with PUT /v1/admin/subjects/%s", name, name)
	case err != nil:
		return err
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- modules ----

type nameView struct {
	Name string `json:"name"`
}

type moduleView struct {
	Name      string     `json:"name"`
	Functions []nameView `json:"functions"`
}

// visibleModule reports whether sub may see and change module m: admins see
// everything, everyone sees the default module, others their own modules.
func visibleModule(sub storage.Subject, m storage.Module) bool {
	return sub.Admin || m.Name == storage.DefaultModule || m.Owner == sub.Name
}

// visibleFunction reports whether sub may see function f of a module it can
// see: in the default module only its creator (and admins) can.
func visibleFunction(sub storage.Subject, f storage.Function) bool {
	return sub.Admin || f.Module != storage.DefaultModule || f.Owner == sub.Name
}

// loadModule returns the :mod module if the caller may see it, else 404
// (not 403, so that names of other subjects' modules do not leak).
func (s *Server) loadModule(c *call) (storage.Module, error) {
	name := c.ps.ByName("mod")
	m, err := s.cfg.Store.GetModule(name)
	if errors.Is(err, storage.ErrNotFound) || err == nil && !visibleModule(c.subject, m) {
		return storage.Module{}, errorf(http.StatusNotFound, "Not Found: module %q does not exist", name)
	}
	return m, err
}

// loadFunction returns the :mod/:fn function if the caller may see it.
func (s *Server) loadFunction(c *call) (storage.Function, error) {
	m, err := s.loadModule(c)
	if err != nil {
		return storage.Function{}, err
	}
	name := c.ps.ByName("fn")
	f, err := s.cfg.Store.GetFunction(m.Name, name)
	if errors.Is(err, storage.ErrNotFound) || err == nil && !visibleFunction(c.subject, f) {
		return storage.Function{}, errorf(http.StatusNotFound, "Not Found: function %q does not exist in module %q", name, m.Name)
	}
	return f, err
}

func (s *Server) listModules(c *call) error {
	mods, err := s.cfg.Store.ListModules()
	if err != nil {
		return err
	}
	out := []nameView{}
	for _, m := range mods {
		if visibleModule(c.subject, m) {
			out = append(out, nameView{Name: m.Name})
		}
	}
	writeJSON(c.w, http.StatusOK, data(out))
	return nil
}

func (s *Server) createModule(c *call) error {
	raw, err := readBody(c, maxJSONBodyBytes)
	if err != nil {
		return err
	}
	name, err := decodeNamed(raw, "module", "module")
	if err != nil {
		return err
	}
	_, err = s.cfg.Store.CreateModule(name, c.subject.Name)
	if errors.Is(err, storage.ErrExists) {
		return errorf(http.StatusConflict, "Conflict: module %q already exists; choose another name", name)
	}
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusCreated, data(nameView{Name: name}))
	return nil
}

func (s *Server) getModule(c *call) error {
	m, err := s.loadModule(c)
	if err != nil {
		return err
	}
	fns, err := s.cfg.Store.ListFunctions(m.Name)
	if err != nil {
		return err
	}
	out := moduleView{Name: m.Name, Functions: []nameView{}}
	for _, f := range fns {
		if visibleFunction(c.subject, f) {
			out.Functions = append(out.Functions, nameView{Name: f.Name})
		}
	}
	writeJSON(c.w, http.StatusOK, data(out))
	return nil
}

func (s *Server) renameModule(c *call) error {
	m, err := s.loadModule(c)
	if err != nil {
		return err
	}
	raw, err := readBody(c, maxJSONBodyBytes)
	if err != nil {
		return err
	}
	to, err := decodeNamed(raw, "module", "module")
	if err != nil {
		return err
	}
	changes, err := s.cfg.Store.RenameModule(m.Name, to)
	switch {
	case errors.Is(err, storage.ErrDefaultModule):
		return errorf(http.StatusBadRequest, "Bad Request: the default module _ cannot be renamed, and no module can be renamed to _")
	case errors.Is(err, storage.ErrExists):
		return errorf(http.StatusConflict, "Conflict: module %q already exists; choose another name", to)
	case errors.Is(err, storage.ErrNotFound):
		return errorf(http.StatusNotFound, "Not Found: module %q does not exist", m.Name)
	case err != nil:
		return err
	}
	for _, ch := range changes {
		s.notify(c.r.Context(), cluster.FunctionEvent{Kind: cluster.FunctionUpdated, Function: *ch.New, Previous: ch.Old, WaitForWorkers: true})
	}
	writeJSON(c.w, http.StatusOK, data(nameView{Name: to}))
	return nil
}

func (s *Server) deleteModule(c *call) error {
	m, err := s.loadModule(c)
	if err != nil {
		return err
	}
	fns, err := s.cfg.Store.DeleteModule(m.Name)
	switch {
	case errors.Is(err, storage.ErrDefaultModule):
		return errorf(http.StatusBadRequest, "Bad Request: the default module _ cannot be deleted")
	case errors.Is(err, storage.ErrNotFound):
		return errorf(http.StatusNotFound, "Not Found: module %q does not exist", m.Name)
	case err != nil:
		return err
	}
	for _, f := range fns {
		s.notify(c.r.Context(), cluster.FunctionEvent{Kind: cluster.FunctionDeleted, Function: f, WaitForWorkers: true})
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- functions ----

// functionView is the record GET /v1/fn/:mod/:fn answers with; it is a
// superset of FunLess's {"name"}.
func functionView(f storage.Function) storage.Function {
	if f.Metadata.AllowedHosts == nil {
		f.Metadata.AllowedHosts = []string{}
	}
	f.Events = triggers.Redact(f.Events)
	f.Sinks = sinks.Redact(f.Sinks) // never echo a secret
	return f
}

// readUpload bounds the body and decodes the multipart upload.
func (s *Server) readUpload(c *call) (upload, error) {
	max := s.cfg.MaxUploadBytes
	if c.r.ContentLength > max+uploadOverhead {
		return upload{}, errorf(http.StatusRequestEntityTooLarge, "Request Entity Too Large: the body is %d bytes, the code limit is %d bytes", c.r.ContentLength, max)
	}
	body := http.MaxBytesReader(c.w, c.r.Body, max+uploadOverhead)
	return parseUpload(c.r.Header.Get("Content-Type"), body, max)
}

// inspect validates uploaded code: Wasm, compiles, supported ABI.
func (s *Server) inspect(ctx context.Context, code []byte) (wasm.ModuleInfo, error) {
	if len(code) == 0 {
		return wasm.ModuleInfo{}, errorf(http.StatusBadRequest, "Bad Request: the code field is empty; attach the .wasm file as the multipart field \"code\"")
	}
	inspect := s.cfg.Inspect
	if inspect == nil {
		inspect = wasm.Inspect
	}
	info, err := inspect(ctx, code)
	if errors.Is(err, wasm.ErrNotWasm) || errors.Is(err, wasm.ErrCompile) || errors.Is(err, wasm.ErrUnsupportedABI) {
		return info, errorf(http.StatusBadRequest, "Bad Request: the code is refused: %v", err)
	}
	if errors.Is(err, wasm.ErrBusy) { // validation children at their bound
		e := errorf(http.StatusServiceUnavailable, "Service Unavailable: %v", err)
		e.header = http.Header{"Retry-After": {"1"}}
		return info, e
	}
	if err != nil {
		return info, fmt.Errorf("inspect uploaded code: %w", err)
	}
	return info, nil
}

func (s *Server) createFunction(c *call) error {
	m, err := s.loadModule(c)
	if err != nil {
		return err
	}
	up, err := s.readUpload(c)
	if err != nil {
		return err
	}
	if up.Name == nil {
		return errorf(http.StatusBadRequest, "Bad Request: the multipart field \"name\" (the function's name) is missing")
	}
	if err := storage.CheckName("function", *up.Name); err != nil {
		return errorf(http.StatusBadRequest, "Bad Request: %v", err)
	}
	if up.Code == nil {
		return errorf(http.StatusBadRequest, "Bad Request: the multipart field \"code\" (the .wasm file) is missing")
	}
	info, err := s.inspect(c.r.Context(), up.Code)
	if err != nil {
		return err
	}
	var md storage.Metadata
	if up.Metadata != nil {
		md = *up.Metadata
	}
	if err := checkMemory(md, info); err != nil {
		return err
	}
	nf := storage.NewFunction{
		Module: m.Name, Name: *up.Name, Owner: c.subject.Name,
		Code: up.Code, ABI: string(info.ABI), Metadata: md, Sinks: up.sinksOrNil(),
	}
	if up.Events != nil {
		if err := s.checkEvents(*up.Events); err != nil {
			return err
		}
		nf.Events = *up.Events
	}
	f, err := s.cfg.Store.CreateFunction(nf)
	if errors.Is(err, storage.ErrExists) {
		return errorf(http.StatusConflict, "Conflict: function %q already exists in module %q; update it with PUT /v1/fn/%s/%s", *up.Name, m.Name, m.Name, *up.Name)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return errorf(http.StatusNotFound, "Not Found: module %q does not exist", m.Name)
	}
	if err != nil {
		return err
	}
	s.notify(c.r.Context(), cluster.FunctionEvent{Kind: cluster.FunctionCreated, Function: f, WaitForWorkers: up.WaitForWorkers})
	writeJSON(c.w, http.StatusCreated, data(functionView(f)))
	return nil
}

func (s *Server) getFunction(c *call) error {
	f, err := s.loadFunction(c)
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, data(functionView(f)))
	return nil
}

func (s *Server) updateFunction(c *call) error {
	f, err := s.loadFunction(c)
	if err != nil {
		return err
	}
	up, err := s.readUpload(c)
	if err != nil {
		return err
	}
	if up.Name != nil && *up.Name != f.Name {
		return errorf(http.StatusBadRequest, "Bad Request: the multipart field \"name\" is %q but the path names function %q; functions cannot be renamed", *up.Name, f.Name)
	}
	if up.Code == nil && up.Metadata == nil && up.Events == nil && up.Sinks == nil {
		return errorf(http.StatusBadRequest, "Bad Request: nothing to update: send the field \"code\" (a .wasm file), \"metadata\", \"events\" and/or \"sinks\"")
	}
	u := storage.FunctionUpdate{Metadata: up.Metadata, Events: up.Events}
	if up.Events != nil {
		if err := s.checkEvents(*up.Events); err != nil {
			return err
		}
	}
	if up.Sinks != nil {
		ns := up.sinksOrNil()
		u.Sinks = &ns
	}
	md := f.Metadata
	if up.Metadata != nil {
		md = *up.Metadata
	}
	if up.Code != nil {
		info, err := s.inspect(c.r.Context(), up.Code)
		if err != nil {
			return err
		}
		if err := checkMemory(md, info); err != nil {
			return err
		}
		u.Code, u.ABI = up.Code, string(info.ABI)
	} else if memoryPages(md) < memoryPages(f.Metadata) {
		// A smaller memory limit for the stored code: check it against
		// the module's declared minimum.
		if err := s.checkStoredMemory(c.r.Context(), f, md); err != nil {
			return err
		}
	}
	ch, err := s.cfg.Store.UpdateFunction(f.Module, f.Name, u)
	if errors.Is(err, storage.ErrNotFound) {
		return errorf(http.StatusNotFound, "Not Found: function %q does not exist in module %q", f.Name, f.Module)
	}
	if err != nil {
		return err
	}
	s.notify(c.r.Context(), cluster.FunctionEvent{Kind: cluster.FunctionUpdated, Function: *ch.New, Previous: ch.Old, WaitForWorkers: up.WaitForWorkers})
	writeJSON(c.w, http.StatusOK, data(functionView(*ch.New)))
	return nil
}

func (s *Server) deleteFunction(c *call) error {
	f, err := s.loadFunction(c)
	if err != nil {
		return err
	}
	deleted, err := s.cfg.Store.DeleteFunction(f.Module, f.Name)
	if errors.Is(err, storage.ErrNotFound) {
		return errorf(http.StatusNotFound, "Not Found: function %q does not exist in module %q", f.Name, f.Module)
	}
	if err != nil {
		return err
	}
	s.notify(c.r.Context(), cluster.FunctionEvent{Kind: cluster.FunctionDeleted, Function: deleted, WaitForWorkers: true})
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// notify tells the cluster about a committed change. Failures are logged:
// the change is durable and workers fetch missing code on demand.
func (s *Server) notify(ctx context.Context, ev cluster.FunctionEvent) {
	if s.cfg.Triggers != nil {
		s.cfg.Triggers.FunctionChanged(ev)
	}
	if s.cfg.Notifier == nil {
		return
	}
	if err := s.cfg.Notifier.FunctionChanged(ctx, ev); err != nil {
		s.log.Warn("could not tell workers about a function change",
			"kind", ev.Kind, "module", ev.Function.Module, "function", ev.Function.Name, "err", err)
	}
}

func (s *Server) invoke(c *call) error {
	f, err := s.loadFunction(c)
	if err != nil {
		return err
	}
	raw, err := readBody(c, s.cfg.MaxArgsBytes)
	if err != nil {
		return err
	}
	args, err := decodeArgs(raw)
	if err != nil {
		return err
	}
	callback, err := decodeCallback(raw)
	if err != nil {
		return err
	}
	scriptName, err := decodeScheduling(raw)
	if err != nil {
		return err
	}
	script, err := s.scriptFor(c.subject, f, scriptName)
	if err != nil {
		return err
	}
	if wantsAsync(c.r) {
		return s.invokeAsync(c, f, args, callback, scriptName)
	}
	if callback != "" {
		return errorf(http.StatusBadRequest, `Bad Request: "callback" is only for asynchronous invocations (?async=true or Prefer: respond-async)`)
	}
	rec := s.newActivation(c, f)
	if rec.ID != "" {
		c.w.Header().Set(ActivationHeader, rec.ID)
	}
	if s.cfg.Invoker == nil {
		finish(&rec, f, time.Now(), cluster.InvokeResult{}, cluster.ErrNoWorker)
		s.record(rec)
		return errorf(http.StatusServiceUnavailable, "%s", cluster.ErrNoWorker.Error())
	}
	started := time.Now()
	res, err := s.cfg.Invoker.Invoke(c.r.Context(), cluster.InvokeRequest{Function: f, Args: args, Subject: c.subject.Name, Script: script})
	if errors.Is(err, storage.ErrNotFound) {
		// The function was updated or deleted while this call was routed,
		// and its old code is gone: run the current version (once).
		if f, err = s.loadFunction(c); err != nil {
			return err
		}
		res, err = s.cfg.Invoker.Invoke(c.r.Context(), cluster.InvokeRequest{Function: f, Args: args, Subject: c.subject.Name, Script: script})
	}
	finish(&rec, f, started, res, err)
	s.recordWithSinks(rec, f, res.Output)
	if err != nil {
		return s.invokeError(c, f, err)
	}
	body := make([]byte, 0, len(res.Output)+10)
	body = append(append(append(body, `{"data":`...), res.Output...), "}\n"...)
	c.w.Header().Set("Content-Type", "application/json")
	c.w.WriteHeader(http.StatusOK)
	c.w.Write(body)
	return nil
}

// invokeError maps an Invoker error to its status (see Invoker).
func (s *Server) invokeError(c *call, f storage.Function, err error) error {
	var fe *cluster.FunctionError
	var re *cluster.RuntimeError
	var pe *cluster.PlacementError
	switch {
	case errors.As(err, &fe):
		return errorf(http.StatusUnprocessableEntity, "%s", fe.Message)
	case errors.As(err, &pe):
		return &apiError{status: http.StatusServiceUnavailable, header: http.Header{"Retry-After": {"1"}},
			detail: fmt.Sprintf("Service Unavailable: the APP script placed no call of %s/%s: %s", f.Module, f.Name, pe.Message)}
	case errors.As(err, &re):
		s.log.Warn("function failed", "module", f.Module, "function", f.Name, "err", re.Message)
		return errorf(http.StatusInternalServerError, "function %s/%s failed: %s", f.Module, f.Name, re.Message)
	case errors.Is(err, cluster.ErrWorkerLost):
		return errorf(http.StatusServiceUnavailable, "%s", err.Error())
	case errors.Is(err, cluster.ErrNoWorker):
		return errorf(http.StatusServiceUnavailable, "%s", cluster.ErrNoWorker.Error())
	case errors.Is(err, cluster.ErrBusy):
		return &apiError{status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {"1"}},
			detail: fmt.Sprintf("Too Many Requests: every worker able to run %s/%s is busy; retry shortly", f.Module, f.Name)}
	case errors.Is(err, cluster.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return errorf(http.StatusGatewayTimeout, "Gateway Timeout: function %s/%s did not finish within its timeout", f.Module, f.Name)
	case errors.Is(err, context.Canceled) && c.r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
		return errorf(499, "client closed the request")
	}
	return fmt.Errorf("invoke %s/%s: %w", f.Module, f.Name, err)
}
