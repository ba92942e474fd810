package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/edgefaas/edgefaas/internal/core/sinks/sinkspec"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/core/triggers/eventspec"
	"github.com/edgefaas/edgefaas/internal/jsengine"
)

// Limits on the small multipart fields.
const (
	maxNameField     = 1 << 10
	maxMetadataField = 64 << 10
	maxFlagField     = 64
	maxListField     = 64 << 10
	// uploadOverhead is what a multipart body may carry beyond the code.
	uploadOverhead = 1 << 20
	// Metadata bounds.
	maxTagLen       = 256
	maxAllowedHosts = 256
	maxHostLen      = 261 // 253 for the name, ":" and a port
)

// upload is a decoded function upload (create or update).
type upload struct {
	Name           *string // nil if the field was absent
	Code           []byte  // nil if absent
	Metadata       *storage.Metadata
	Events         *[]storage.Event // nil if the field was absent (see eventspec.Parse)
	Sinks          []storage.Sink   // nil if the field was absent
	WaitForWorkers bool
}

// sinksOrNil is the sinks to store: nil for none.
func (up *upload) sinksOrNil() []storage.Sink {
	if len(up.Sinks) == 0 {
		return nil
	}
	return up.Sinks
}

// uploadFields lists the accepted multipart fields, for error messages.
const uploadFields = "name, code, metadata, events, sinks, wait_for_workers"

// parseUpload decodes FunLess's multipart upload. Every field is bounded,
// unknown and repeated fields are refused (nothing is silently dropped),
// metadata is strict JSON, and the code must not exceed maxCode (413).
func parseUpload(contentType string, body io.Reader, maxCode int64) (upload, error) {
	up := upload{WaitForWorkers: true}
	mediaType, params, err := mime.ParseMediaType(contentType)
	if err != nil || mediaType != "multipart/form-data" || params["boundary"] == "" {
		return up, errorf(http.StatusBadRequest, "Bad Request: expected a multipart/form-data body with the fields %s; got Content-Type %q", uploadFields, contentType)
	}
	mr := multipart.NewReader(body, params["boundary"])
	seen := map[string]bool{}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return up, multipartError(err)
		}
		field := part.FormName()
		if seen[field] {
			part.Close()
			return up, errorf(http.StatusBadRequest, "Bad Request: the field %q appears more than once", field)
		}
		seen[field] = true
		err = up.readField(field, part, maxCode)
		part.Close()
		if err != nil {
			return up, err
		}
	}
	return up, nil
}

func (up *upload) readField(field string, part *multipart.Part, maxCode int64) error {
	switch field {
	case "name":
		v, err := readPart(part, maxNameField, field)
		if err != nil {
			return err
		}
		s := string(v)
		up.Name = &s
	case "code":
		v, err := io.ReadAll(io.LimitReader(part, maxCode+1))
		if err != nil {
			return multipartError(err)
		}
		if int64(len(v)) > maxCode {
			return errorf(http.StatusRequestEntityTooLarge, "Request Entity Too Large: the code is larger than the limit of %d bytes", maxCode)
		}
		if v == nil {
			v = []byte{}
		}
		// A script sent as a .js, .mjs or .cjs file is a JavaScript
		// function: stored as jsengine.Wrap makes it (the CLI sends it so).
		if jsengine.IsCompiled(v) {
			return errorf(http.StatusBadRequest, "Bad Request: the code is compiled JavaScript, which only the core makes; upload the script")
		}
		if isScriptName(part.FileName()) && !bytes.HasPrefix(v, []byte("\x00asm")) {
			if _, wrapped := jsengine.Source(v); !wrapped {
				v = jsengine.Wrap(v)
			}
		}
		up.Code = v
	case "metadata":
		v, err := readPart(part, maxMetadataField, field)
		if err != nil {
			return err
		}
		md, err := decodeMetadata(v)
		if err != nil {
			return err
		}
		up.Metadata = md
	case "wait_for_workers":
		v, err := readPart(part, maxFlagField, field)
		if err != nil {
			return err
		}
		s := strings.TrimSpace(string(v))
		if s == "" {
			up.WaitForWorkers = true
			return nil
		}
		b, err := strconv.ParseBool(s)
		if err != nil {
			return errorf(http.StatusBadRequest, `Bad Request: wait_for_workers must be "true" or "false", got %q`, s)
		}
		up.WaitForWorkers = b
	case "events":
		v, err := readPart(part, maxListField, field)
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(v)) == 0 {
			return nil // an empty part keeps the triggers (FunLess clients send one)
		}
		evs, err := eventspec.Parse(v)
		if err != nil {
			return errorf(http.StatusBadRequest, "Bad Request: %v", err)
		}
		up.Events = &evs
	case "sinks":
		v, err := readPart(part, maxListField, field)
		if err != nil {
			return err
		}
		if len(bytes.TrimSpace(v)) == 0 {
			return nil // an empty part is no value: an update keeps the sinks
		}
		list, err := sinkspec.Parse(v)
		if err != nil {
			return errorf(http.StatusBadRequest, "Bad Request: %v", err)
		}
		up.Sinks = list
	default:
		return errorf(http.StatusBadRequest, "Bad Request: unknown field %q; the accepted fields are %s", field, uploadFields)
	}
	return nil
}

// readPart reads a part of at most limit bytes.
func readPart(part io.Reader, limit int64, field string) ([]byte, error) {
	v, err := io.ReadAll(io.LimitReader(part, limit+1))
	if err != nil {
		return nil, multipartError(err)
	}
	if int64(len(v)) > limit {
		return nil, errorf(http.StatusBadRequest, "Bad Request: the field %q is longer than %d bytes", field, limit)
	}
	return v, nil
}

// multipartError turns a read error into 413 (body limit) or 400.
func multipartError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return errorf(http.StatusRequestEntityTooLarge, "Request Entity Too Large: the body exceeds the limit of %d bytes", mbe.Limit)
	}
	return errorf(http.StatusBadRequest, "Bad Request: malformed multipart body: %v", err)
}

// metadataBody is the JSON clients send; pointers tell "absent" from zero.
type metadataBody struct {
	Tag          *string  `json:"tag"`
	Capacity     *int64   `json:"capacity"`
	TimeoutMS    *int64   `json:"timeout_ms"`
	AllowedHosts []string `json:"allowed_hosts"`
	Idempotent   *bool    `json:"idempotent"`
}

// decodeMetadata decodes and validates the metadata field. An empty field or
// null means "no metadata sent" (nil).
func decodeMetadata(raw []byte) (*storage.Metadata, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var b metadataBody
	if err := decodeStrict(raw, &b, "metadata"); err != nil {
		return nil, err
	}
	var md storage.Metadata
	if b.Tag != nil {
		if len(*b.Tag) > maxTagLen {
			return nil, errorf(http.StatusBadRequest, "Bad Request: metadata: tag is %d bytes long, the limit is %d", len(*b.Tag), maxTagLen)
		}
		md.Tag = *b.Tag
	}
	if b.Capacity != nil {
		if *b.Capacity < -1 {
			return nil, errorf(http.StatusBadRequest, "Bad Request: metadata: capacity is the memory the function needs in MiB and must be >= 0 (or -1 for undeclared), got %d", *b.Capacity)
		}
		if *b.Capacity > maxCapacityMiB {
			return nil, errorf(http.StatusBadRequest, "Bad Request: metadata: capacity is the function's memory limit in MiB; workers allow at most %d, got %d", maxCapacityMiB, *b.Capacity)
		}
		md.Capacity = *b.Capacity
	}
	if b.TimeoutMS != nil {
		if *b.TimeoutMS < 0 || *b.TimeoutMS > maxTimeoutMS {
			return nil, errorf(http.StatusBadRequest, "Bad Request: metadata: timeout_ms must be between 0 (platform default) and %d (the workers' maximum, 15 min), got %d", maxTimeoutMS, *b.TimeoutMS)
		}
		md.TimeoutMS = *b.TimeoutMS
	}
	if len(b.AllowedHosts) > maxAllowedHosts {
		return nil, errorf(http.StatusBadRequest, "Bad Request: metadata: allowed_hosts has %d entries, the limit is %d", len(b.AllowedHosts), maxAllowedHosts)
	}
	for _, h := range b.AllowedHosts {
		if err := checkHost(h); err != nil {
			return nil, errorf(http.StatusBadRequest, "Bad Request: metadata: allowed_hosts: %v", err)
		}
	}
	md.AllowedHosts = b.AllowedHosts
	if b.Idempotent != nil {
		md.Idempotent = *b.Idempotent
	}
	return &md, nil
}

// checkHost accepts "host", "host:port" and "*.domain" entries.
func checkHost(h string) error {
	if h == "" || len(h) > maxHostLen {
		return fmt.Errorf("%q must be a host name of 1 to %d characters", h, maxHostLen)
	}
	for i, r := range h {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == ':' || r == '[' || r == ']' || r == '*' && i == 0
		if !ok {
			return fmt.Errorf("%q is not a host name (letters, digits, '.', '-', an optional ':port', or a leading '*.' wildcard)", h)
		}
	}
	return nil
}

// isScriptName reports whether an uploaded file's name is a JavaScript
// script's.
func isScriptName(name string) bool {
	switch path.Ext(name) {
	case ".js", ".mjs", ".cjs":
		return true
	}
	return false
}
