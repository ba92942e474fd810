package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/app"
	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// APP scheduling scripts (FunLess's /v1/scripts/app). Names are one
// namespace per core, as in FunLess. A script is visible (listed, read,
// usable in an invocation) to its owner, to admins, and — when an admin
// created it — to everyone: the operator's scripts are the site's shared
// placement rules, a tenant's own scripts stay private. Only the owner or
// an admin deletes one.

// scriptFields lists the accepted multipart fields, for error messages.
const scriptFields = `name (the script's name) and file (the YAML script)`

// scriptView is a script as the API answers it: FunLess's {id, name,
// script} plus the owner, whether it is shared, the YAML and the time.
type scriptView struct {
	ID        int64           `json:"id"`
	Name      string          `json:"name"`
	Script    json.RawMessage `json:"script"`
	Owner     string          `json:"owner"`
	Shared    bool            `json:"shared"`
	Source    string          `json:"source"`
	CreatedAt time.Time       `json:"created_at"`
}

func viewScript(sc storage.Script) scriptView {
	return scriptView{ID: sc.ID, Name: sc.Name, Script: sc.Script, Owner: sc.Owner, Shared: sc.Shared,
		Source: sc.Source, CreatedAt: sc.CreatedAt}
}

// visibleScript reports whether sub may see and use sc.
func visibleScript(sub storage.Subject, sc storage.Script) bool {
	return sub.Admin || sc.Shared || sc.Owner == sub.Name
}

func (s *Server) listScripts(c *call) error {
	all, err := s.cfg.Store.ListScripts()
	if err != nil {
		return err
	}
	out := []scriptView{}
	for _, sc := range all {
		if visibleScript(c.subject, sc) {
			out = append(out, viewScript(sc))
		}
	}
	return reply(c, http.StatusOK, out)
}

// loadScript returns the named script if the caller may see it, else a
// 404 (not 403: other subjects' script names do not leak).
func (s *Server) loadScript(sub storage.Subject, name string) (storage.Script, error) {
	sc, err := s.cfg.Store.GetScript(name)
	if errors.Is(err, storage.ErrNotFound) || err == nil && !visibleScript(sub, sc) {
		return storage.Script{}, errorf(http.StatusNotFound, "Not Found: APP script %q does not exist", name)
	}
	return sc, err
}

func (s *Server) getScript(c *call) error {
	sc, err := s.loadScript(c.subject, c.ps.ByName("name"))
	if err != nil {
		return err
	}
	return reply(c, http.StatusOK, viewScript(sc))
}

func (s *Server) deleteScript(c *call) error {
	sc, err := s.loadScript(c.subject, c.ps.ByName("name"))
	if err != nil {
		return err
	}
	if !c.subject.Admin && sc.Owner != c.subject.Name {
		return errorf(http.StatusForbidden, "Forbidden: APP script %q is shared by an admin; only its owner or an admin can delete it", sc.Name)
	}
	_, err = s.writes.DeleteScript(sc)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return errorf(http.StatusNotFound, "Not Found: APP script %q does not exist", sc.Name)
	case errors.Is(err, storage.ErrChanged):
		if _, lerr := s.loadScript(c.subject, sc.Name); lerr != nil {
			return lerr // another's now: as if missing
		}
		return errorf(http.StatusConflict, "Conflict: APP script %q %v", sc.Name, storage.ErrChanged)
	case err != nil:
		return err
	}
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) createScript(c *call) error {
	name, src, err := readScriptUpload(c)
	if err != nil {
		return err
	}
	if err := storage.CheckName("script", name); err != nil {
		return errorf(http.StatusBadRequest, "Bad Request: %v", err)
	}
	parsed, err := app.Parse(src)
	if err != nil {
		return errorf(http.StatusBadRequest, "Bad Request: %v", err)
	}
	norm, err := json.Marshal(parsed)
	if err != nil {
		return fmt.Errorf("encode APP script: %w", err)
	}
	sc, err := s.writes.CreateScript(storage.Script{Name: name, Owner: c.subject.Name, Shared: c.subject.Admin, Script: norm, Source: string(src)})
	if errors.Is(err, storage.ErrExists) {
		if _, lerr := s.loadScript(c.subject, name); lerr != nil {
			return nameTaken("APP script", name, "")
		}
		return errorf(http.StatusConflict, "Conflict: an APP script named %q already exists; delete it first or choose another name", name)
	}
	if err != nil {
		return err
	}
	return reply(c, http.StatusCreated, viewScript(sc))
}

// readScriptUpload decodes the multipart body: exactly the fields name and
// file, each once, bounded.
func readScriptUpload(c *call) (name string, src []byte, err error) {
	ct := c.r.Header.Get("Content-Type")
	mediaType, params, perr := mime.ParseMediaType(ct)
	if perr != nil || mediaType != "multipart/form-data" || params["boundary"] == "" {
		return "", nil, errorf(http.StatusBadRequest, "Bad Request: expected a multipart/form-data body with the fields %s; got Content-Type %q", scriptFields, ct)
	}
	body := http.MaxBytesReader(c.w, c.r.Body, app.MaxSourceBytes+uploadOverhead)
	mr := multipart.NewReader(body, params["boundary"])
	var haveName, haveFile bool
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", nil, multipartError(err)
		}
		field := part.FormName()
		switch field {
		case "name", "file":
		default:
			part.Close()
			return "", nil, errorf(http.StatusBadRequest, "Bad Request: unknown field %q; the accepted fields are %s", field, scriptFields)
		}
		if field == "name" && haveName || field == "file" && haveFile {
			part.Close()
			return "", nil, errorf(http.StatusBadRequest, "Bad Request: the field %q appears more than once", field)
		}
		limit := int64(maxNameField)
		if field == "file" {
			limit = app.MaxSourceBytes
		}
		v, err := readPart(part, limit, field)
		part.Close()
		if err != nil {
			return "", nil, err
		}
		if field == "name" {
			name, haveName = strings.TrimSpace(string(v)), true
		} else {
			src, haveFile = v, true
		}
	}
	if !haveName {
		return "", nil, errorf(http.StatusBadRequest, "Bad Request: the multipart field \"name\" (the script's name) is missing")
	}
	if !haveFile {
		return "", nil, errorf(http.StatusBadRequest, "Bad Request: the multipart field \"file\" (the YAML script) is missing")
	}
	return name, src, nil
}
