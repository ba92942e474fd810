package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// How a refused write is answered without telling the caller about names
// it cannot see: a conflict (409) only over a record the caller can see
// now, and for anything else the 404 every route gives for another
// tenant's module, function or script. Why: docs/RATIONALE.md,
// "Compare-and-set writes".

// seesFunction reports whether the caller can see module/name as it is now,
// in a core group once this core has applied what refused the write.
func (s *Server) seesFunction(c *call, module, name string) bool {
	s.catchUpToAnswer(c)
	m, err := s.cfg.Store.GetModule(module)
	if err != nil || !visibleModule(c.subject, m) {
		return false
	}
	f, err := s.cfg.Store.GetFunction(module, name)
	return err == nil && visibleFunction(c.subject, f)
}

// seesTakenFunction reports whether the caller could see the function
// that took module/name from its create: as it is now, or, when it was
// deleted between the refusal and this answer (in a core group another
// core may delete it meanwhile), as any function there: all of a module
// other than the default one is visible to whoever may create in it,
// and an admin sees everything; in the default module the gone
// function's creator is unknown, so it counts as another's.
func (s *Server) seesTakenFunction(c *call, module, name string) bool {
	if s.seesFunction(c, module, name) {
		return true
	}
	if _, err := s.cfg.Store.GetFunction(module, name); !errors.Is(err, storage.ErrNotFound) {
		return false
	}
	return c.subject.Admin || module != storage.DefaultModule
}

// seesModule reports whether the caller can see module name as it is now,
// in a core group once this core has applied what refused the write.
func (s *Server) seesModule(c *call, name string) bool {
	s.catchUpToAnswer(c)
	m, err := s.cfg.Store.GetModule(name)
	return err == nil && visibleModule(c.subject, m)
}

// functionWriteError answers a refused update or delete of f.
func (s *Server) functionWriteError(c *call, f storage.Function, err error) error {
	switch {
	case errors.Is(err, storage.ErrChanged) && s.seesFunction(c, f.Module, f.Name):
		return errorf(http.StatusConflict, "Conflict: function %q in module %q %v", f.Name, f.Module, storage.ErrChanged)
	case errors.Is(err, storage.ErrChanged), errors.Is(err, storage.ErrNotFound):
		return errorf(http.StatusNotFound, "Not Found: function %q does not exist in module %q", f.Name, f.Module)
	}
	return err
}

// moduleChanged answers a write refused because module name is no longer
// the module the handler checked.
func (s *Server) moduleChanged(c *call, name string) error {
	if s.seesModule(c, name) {
		return errorf(http.StatusConflict, "Conflict: module %q %v", name, storage.ErrChanged)
	}
	return errorf(http.StatusNotFound, "Not Found: module %q does not exist", name)
}

// moduleExists answers a create or rename onto a module name that is taken.
func (s *Server) moduleExists(c *call, name string) error {
	if s.seesModule(c, name) {
		return errorf(http.StatusConflict, "Conflict: module %q already exists; choose another name", name)
	}
	return nameTaken("module", name, "")
}

// nameTaken answers a create onto a name held by something the caller
// cannot see: 404, saying neither whose nor what it is.
func nameTaken(kind, name, module string) error {
	where := ""
	if module != "" {
		where = fmt.Sprintf(" in module %q", module)
	}
	return errorf(http.StatusNotFound, "Not Found: the %s name %q is not available%s; choose another name", kind, name, where)
}
