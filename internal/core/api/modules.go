package api

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
)

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
	return reply(c, http.StatusOK, out)
}

func (s *Server) createModule(c *call) error {
	name, err := readNamed(c, "module")
	if err != nil {
		return err
	}
	_, err = s.writes.CreateModule(name, c.subject.Name)
	if errors.Is(err, storage.ErrExists) {
		return s.moduleExists(c, name)
	}
	if err != nil {
		return err
	}
	return reply(c, http.StatusCreated, nameView{Name: name})
}

// moduleDetailView is a module with its functions' whole records, the
// answer to GET /v1/fn/:mod?details=true: one request for a listing that
// shows each function's ABI, size and version.
type moduleDetailView struct {
	Name      string             `json:"name"`
	Functions []storage.Function `json:"functions"`
}

// getModule answers FunLess's shape, the functions' names; with
// ?details=true, their records (the same fields as GET /v1/fn/:mod/:fn).
func (s *Server) getModule(c *call) error {
	details := false
	if v := c.r.URL.Query().Get("details"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errorf(http.StatusBadRequest, "Bad Request: details must be true or false, not %q", v)
		}
		details = b
	}
	m, err := s.loadModule(c)
	if err != nil {
		return err
	}
	fns, err := s.cfg.Store.ListFunctions(m.Name)
	if err != nil {
		return err
	}
	if details {
		out := moduleDetailView{Name: m.Name, Functions: []storage.Function{}}
		for _, f := range fns {
			if visibleFunction(c.subject, f) {
				out.Functions = append(out.Functions, functionView(f))
			}
		}
		return reply(c, http.StatusOK, out)
	}
	out := moduleView{Name: m.Name, Functions: []nameView{}}
	for _, f := range fns {
		if visibleFunction(c.subject, f) {
			out.Functions = append(out.Functions, nameView{Name: f.Name})
		}
	}
	return reply(c, http.StatusOK, out)
}

func (s *Server) renameModule(c *call) error {
	m, err := s.loadModule(c)
	if err != nil {
		return err
	}
	to, err := readNamed(c, "module")
	if err != nil {
		return err
	}
	changes, err := s.writes.RenameModule(m, to)
	switch {
	case errors.Is(err, storage.ErrDefaultModule):
		return errorf(http.StatusBadRequest, "Bad Request: the default module _ cannot be renamed, and no module can be renamed to _")
	case errors.Is(err, storage.ErrExists):
		return s.moduleExists(c, to)
	case errors.Is(err, storage.ErrNotFound):
		return errorf(http.StatusNotFound, "Not Found: module %q does not exist", m.Name)
	case errors.Is(err, storage.ErrChanged):
		return s.moduleChanged(c, m.Name)
	case err != nil:
		return err
	}
	for _, ch := range changes {
		s.notify(c.r.Context(), cluster.FunctionEvent{Kind: cluster.FunctionUpdated, Function: *ch.New, Previous: ch.Old, WaitForWorkers: true})
	}
	return reply(c, http.StatusOK, nameView{Name: to})
}

func (s *Server) deleteModule(c *call) error {
	m, err := s.loadModule(c)
	if err != nil {
		return err
	}
	fns, err := s.writes.DeleteModule(m)
	switch {
	case errors.Is(err, storage.ErrDefaultModule):
		return errorf(http.StatusBadRequest, "Bad Request: the default module _ cannot be deleted")
	case errors.Is(err, storage.ErrNotFound):
		return errorf(http.StatusNotFound, "Not Found: module %q does not exist", m.Name)
	case errors.Is(err, storage.ErrChanged):
		return s.moduleChanged(c, m.Name)
	case err != nil:
		return err
	}
	for _, f := range fns {
		s.notify(c.r.Context(), cluster.FunctionEvent{Kind: cluster.FunctionDeleted, Function: f, WaitForWorkers: true})
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}
