package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/sinks/sinkspec"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/core/triggers/eventspec"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// functionView is the record GET /v1/fn/:mod/:fn answers with; it is a
// superset of FunLess's {"name"}.
func functionView(f storage.Function) storage.Function {
	if f.Metadata.AllowedHosts == nil {
		f.Metadata.AllowedHosts = []string{}
	}
	f.Events = eventspec.Redact(f.Events)
	f.Sinks = sinkspec.Redact(f.Sinks) // never echo a secret
	return f
}

// readUpload bounds the body and decodes the multipart upload.
func (s *Server) readUpload(c *call) (upload, error) {
	max := s.cfg.MaxUploadBytes
	if c.r.ContentLength > max+uploadOverhead {
		e := errorf(http.StatusRequestEntityTooLarge, "Request Entity Too Large: the body is %d bytes, the code limit is %d bytes", c.r.ContentLength, max)
		e.header = http.Header{"Connection": {"close"}} // the body is not read: close, not discard
		return upload{}, e
	}
	// On a full disk the upload is refused before its body is read: a
	// client that sent "Expect: 100-continue" does not send it at all.
	if err := s.cfg.Store.CheckSpace(c.r.ContentLength); err != nil {
		return upload{}, err
	}
	if err := s.bodies.admit(c, max+uploadOverhead); err != nil {
		return upload{}, err
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
	if errors.Is(err, wasm.ErrValidationMemory) {
		return info, errorf(http.StatusRequestEntityTooLarge, "Payload Too Large: the code is refused: %v", err)
	}
	if errors.Is(err, wasm.ErrBusy) { // validation children hold their memory
		e := errorf(http.StatusTooManyRequests, "Too Many Requests: %v", err)
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
	if info.Stored != nil { // a script, stored with its bytecode
		up.Code = info.Stored
	}
	var md storage.Metadata
	if up.Metadata != nil {
		md = *up.Metadata
	}
	if err := checkMemory(md, info); err != nil {
		return err
	}
	nf := storage.NewFunction{
		Name: *up.Name, Owner: c.subject.Name,
		Code: up.Code, ABI: string(info.ABI), Metadata: md, Sinks: up.sinksOrNil(),
	}
	if up.Events != nil {
		if err := s.checkEvents(c.subject.Name, *up.Events); err != nil {
			return err
		}
		nf.Events = *up.Events
	}
	f, err := s.writes.CreateFunction(m, nf)
	switch {
	case errors.Is(err, storage.ErrExists):
		if s.seesTakenFunction(c, m.Name, *up.Name) {
			return errorf(http.StatusConflict, "Conflict: function %q already exists in module %q; update it with PUT /v1/fn/%s/%s", *up.Name, m.Name, m.Name, *up.Name)
		}
		return nameTaken("function", *up.Name, m.Name)
	case errors.Is(err, storage.ErrNotFound):
		return errorf(http.StatusNotFound, "Not Found: module %q does not exist", m.Name)
	case errors.Is(err, storage.ErrChanged):
		return s.moduleChanged(c, m.Name)
	case err != nil:
		return err
	}
	s.notify(c.r.Context(), cluster.FunctionEvent{Kind: cluster.FunctionCreated, Function: f, WaitForWorkers: up.WaitForWorkers})
	return reply(c, http.StatusCreated, functionView(f))
}

func (s *Server) getFunction(c *call) error {
	f, err := s.loadFunction(c)
	if err != nil {
		return err
	}
	return reply(c, http.StatusOK, functionView(f))
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
		if err := s.checkEvents(f.Owner, *up.Events); err != nil {
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
		if info.Stored != nil {
			u.Code = info.Stored
		}
	} else if memoryPages(md) < memoryPages(f.Metadata) {
		// A smaller memory limit for the stored code: check it against
		// the module's declared minimum.
		if err := s.checkStoredMemory(c.r.Context(), f, md); err != nil {
			return err
		}
	}
	ch, err := s.writes.UpdateFunction(f, u)
	if err != nil {
		return s.functionWriteError(c, f, err)
	}
	s.notify(c.r.Context(), cluster.FunctionEvent{Kind: cluster.FunctionUpdated, Function: *ch.New, Previous: ch.Old, WaitForWorkers: up.WaitForWorkers})
	return reply(c, http.StatusOK, functionView(*ch.New))
}

func (s *Server) deleteFunction(c *call) error {
	f, err := s.loadFunction(c)
	if err != nil {
		return err
	}
	deleted, err := s.writes.DeleteFunction(f)
	if err != nil {
		return s.functionWriteError(c, f, err)
	}
	s.notify(c.r.Context(), cluster.FunctionEvent{Kind: cluster.FunctionDeleted, Function: deleted, WaitForWorkers: true})
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// notify tells the cluster about a committed change. Failures are logged:
// the change is durable and workers fetch missing code on demand.
func (s *Server) notify(ctx context.Context, ev cluster.FunctionEvent) {
	if gone := s.cfg.FunctionGone; gone != nil {
		switch {
		case ev.Kind == cluster.FunctionDeleted:
			gone(ev.Function.Module, ev.Function.Name)
		case ev.Previous != nil && (ev.Previous.Module != ev.Function.Module || ev.Previous.Name != ev.Function.Name):
			gone(ev.Previous.Module, ev.Previous.Name)
		}
	}
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
