package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// access says who may call a route.
type access int

const (
	public access = iota // no token
	user                 // any valid token
	admin                // an admin token
)

func (a access) String() string {
	switch a {
	case public:
		return "public"
	case user:
		return "user"
	}
	return "admin"
}

// call is one authenticated request as the handlers see it.
type call struct {
	w       http.ResponseWriter
	r       *http.Request
	ps      httprouter.Params
	subject storage.Subject // zero for public routes
	// release runs when the handler returns (bodyAdmission).
	release []func()
}

type handler func(c *call) error

// apiError is an error with the HTTP status and the message a person can act
// on. Handlers return it; anything else becomes a 500.
type apiError struct {
	status int
	detail string
	header http.Header
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s", e.status, e.detail) }

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{status: status, detail: fmt.Sprintf(format, args...)}
}

// errorBody is FunLess's error shape.
type errorBody struct {
	Errors struct {
		Detail string `json:"detail"`
	} `json:"errors"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"errors":{"detail":"Internal Server Error: could not encode the response"}}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, status int, detail string) {
	var body errorBody
	body.Errors.Detail = detail
	writeJSON(w, status, body)
}

// data wraps a payload in FunLess's success envelope.
func data(v any) any { return map[string]any{"data": v} }

// reply answers a request with status and FunLess's {"data": v}.
func reply(c *call, status int, v any) error {
	writeJSON(c.w, status, data(v))
	return nil
}

// readJSON reads a small JSON body (at most maxJSONBodyBytes) strictly
// into v; what names the body in errors.
func readJSON(c *call, v any, what string) error {
	// A small body has jsonBodyTimeout to arrive, not the server's
	// readTimeout, which is sized for uploads: a public route (the node
	// join) cannot be held open for minutes by a trickle.
	http.NewResponseController(c.w).SetReadDeadline(time.Now().Add(jsonBodyTimeout))
	raw, err := readBody(c, maxJSONBodyBytes)
	if err != nil {
		return err
	}
	return decodeStrict(raw, v, what)
}

// readNamed reads a {"<key>":{"name":"..."}} body (a module or subject)
// and returns the checked name.
func readNamed(c *call, key string) (string, error) {
	raw, err := readBody(c, maxJSONBodyBytes)
	if err != nil {
		return "", err
	}
	return decodeNamed(raw, key, key)
}

// statusWriter remembers the status for metrics and for knowing whether a
// panic can still be answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (read
// deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// handle registers h for method and path behind authentication, panic
// recovery and metrics.
func (s *Server) handle(method, path string, acc access, h handler) {
	s.table = append(s.table, Route{Method: method, Path: path, Access: acc.String()})
	s.router.Handle(method, path, s.wrap(path, method, func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		c := &call{w: w, r: r, ps: ps}
		defer func() {
			for _, f := range c.release {
				f()
			}
		}()
		if acc != public {
			sub, aerr := s.authenticate(r, acc)
			if aerr != nil {
				s.writeAPIError(w, r, aerr)
				return
			}
			c.subject = sub
		}
		if err := h(c); err != nil {
			if errors.Is(err, storage.ErrDiskFull) && c.subject.Name != "" {
				s.diskFull.hold(r.Context(), c.subject.Name)
			}
			s.writeAPIError(w, r, err)
		}
	}))
}

// wrap adds recovery and metrics to any handler; route and method label
// metrics (method "": the request's own, for handlers of any method).
func (s *Server) wrap(route, method string, h httprouter.Handle) httprouter.Handle {
	var rm *routeMetrics
	if method != "" {
		rm = s.metrics.forRoute(route, method)
	}
	return func(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("handler panic", "route", route, "method", r.Method, "panic", p, "stack", string(debug.Stack()))
				if sw.status == 0 {
					writeError(sw, http.StatusInternalServerError, "Internal Server Error: the request could not be handled; the core's log has the details")
				}
			}
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			if rm != nil {
				rm.observe(status, time.Since(start))
			} else {
				s.metrics.observe(route, r.Method, status, time.Since(start))
			}
		}()
		h(sw, r, ps)
	}
}

// authenticate checks the bearer token and the access level.
func (s *Server) authenticate(r *http.Request, acc access) (storage.Subject, error) {
	sub, err := s.checkToken(r, acc)
	var ae *apiError
	if errors.As(err, &ae) {
		// Refusals are logged (never the token), so an operator sees
		// probing and misconfigured clients, at a bounded rate: anyone can
		// cause them. The next line written counts those left out.
		if ok, suppressed := s.refusalLog.allow(); ok {
			attrs := []any{"status", ae.status, "reason", refusalReason(ae.detail),
				"method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr}
			if suppressed > 0 {
				attrs = append(attrs, "suppressed", suppressed)
			}
			s.log.Warn("request refused", attrs...)
		}
		if ae.status == http.StatusUnauthorized {
			s.holdStranger(r.Context())
		}
	}
	return sub, err
}

// refusalReason is the first sentence of a refusal's detail.
func refusalReason(detail string) string {
	reason, _, _ := strings.Cut(detail, ":")
	return reason
}

func (s *Server) checkToken(r *http.Request, acc access) (storage.Subject, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return storage.Subject{}, &apiError{status: http.StatusUnauthorized,
			detail: "Missing token: send the header 'Authorization: Bearer <token>' (first boot wrote the admin and guest tokens to the file 'tokens' in the core's data directory)",
			header: http.Header{"WWW-Authenticate": {`Bearer realm="edgefaas"`}}}
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return storage.Subject{}, &apiError{status: http.StatusUnauthorized,
			detail: "Malformed Authorization header: expected 'Bearer <token>'",
			header: http.Header{"WWW-Authenticate": {`Bearer realm="edgefaas"`}}}
	}
	sub, err := s.cfg.Store.Authenticate(strings.TrimSpace(token))
	if errors.Is(err, storage.ErrUnauthenticated) {
		return storage.Subject{}, &apiError{status: http.StatusUnauthorized,
			detail: "Invalid token: it matches no subject, or it was revoked or rotated; ask an admin for a new one",
			header: http.Header{"WWW-Authenticate": {`Bearer realm="edgefaas", error="invalid_token"`}}}
	}
	if err != nil {
		return storage.Subject{}, err
	}
	if acc == admin && !sub.Admin {
		return storage.Subject{}, errorf(http.StatusForbidden, "Forbidden: this endpoint needs an admin token, and subject %q is not an admin", sub.Name)
	}
	return sub, nil
}

// writeAPIError answers with err's status and detail; a full disk
// (storage.ErrDiskFull) with 507; a write the core group could not take
// (Unavailable) with 503 and Retry-After; unexpected errors are logged and answered
// with a generic 500.
func (s *Server) writeAPIError(w http.ResponseWriter, r *http.Request, err error) {
	if u, ok := unavailableError(err); ok {
		err = u
	}
	var ae *apiError
	if errors.As(err, &ae) {
		for k, vs := range ae.header {
			for _, v := range vs {
				w.Header().Add(k, v)
			}
		}
		writeError(w, ae.status, ae.detail)
		return
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("Request Entity Too Large: the body exceeds the limit of %d bytes", mbe.Limit))
		return
	}
	if errors.Is(err, storage.ErrQuota) {
		s.metrics.refusedByQuota(err)
		// A quota is the operator's decision, not a passing condition:
		// 403, not 429 (docs/RATIONALE.md#why-per-subject-quotas-and-their-defaults).
		writeError(w, http.StatusForbidden, "Forbidden: "+err.Error()+"; an admin can raise it (PUT /v1/admin/subjects/:name/quota)")
		return
	}
	if errors.Is(err, storage.ErrDiskFull) {
		// The one place a full disk becomes an answer, whichever write met
		// it (upload, async call, record); the store logs each change
		// between full and not full once, and counts every refusal.
		writeError(w, http.StatusInsufficientStorage, "Insufficient Storage: "+storage.ErrDiskFull.Error())
		return
	}
	s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "Internal Server Error: the core's log has the details")
}
