// Package openapicheck holds HTTP exchanges with the core to the API's
// description, docs/openapi.yaml. A test suite sends its requests through
// Spec.Transport: every request and answer is validated with kin-openapi,
// and an exchange the description does not allow is reported.
//
// An exchange conforms when the answer (its status, headers and body) is
// one the description documents for the operation, and the core accepted
// (answered below 400) only requests the description allows. A request the
// description refuses and the core refuses too is what a test of bad input
// sends: it conforms. A path or method the description does not have must
// be answered 404 or 405 in the error shape.
package openapicheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// SpecFile is the description's path in the repository.
const SpecFile = "docs/openapi.yaml"

// Spec is a loaded, valid description and its router.
type Spec struct {
	Doc    *openapi3.T
	router routers.Router

	mu   sync.Mutex
	seen map[Operation]int
}

// Operation is one method and path of the description, the path in
// OpenAPI's form (/v1/fn/{mod}).
type Operation struct {
	Method string
	Path   string
}

func (o Operation) String() string { return o.Method + " " + o.Path }

// Path returns the description's path: SpecFile under the directory of
// go.mod above the working directory.
func Path() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, SpecFile), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above %s", dir)
		}
		dir = parent
	}
}

// Load reads the description at path, validates it as OpenAPI 3.0 and
// builds its router. The servers are dropped from the router's copy so a
// core on any address matches.
func Load(path string) (*Spec, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("%s is not a valid OpenAPI description: %w", path, err)
	}
	routed := *doc
	routed.Servers = nil
	router, err := gorillamux.NewRouter(&routed)
	if err != nil {
		return nil, fmt.Errorf("route %s: %w", path, err)
	}
	return &Spec{Doc: doc, router: router, seen: map[Operation]int{}}, nil
}

// Operations lists every operation of the description, sorted.
func (s *Spec) Operations() []Operation {
	var out []Operation
	for path, item := range s.Doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, Operation{Method: method, Path: path})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

// Seen returns how many checked exchanges each operation had.
func (s *Spec) Seen() map[Operation]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[Operation]int, len(s.seen))
	for k, v := range s.seen {
		out[k] = v
	}
	return out
}

// Check validates one exchange: req was sent with reqBody and answered by
// resp with respBody (req.Body and resp.Body are not read). It returns nil
// when the exchange conforms (see the package comment).
func (s *Spec) Check(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) error {
	in := req.Clone(req.Context())
	in.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := s.router.FindRoute(in)
	if err != nil {
		return s.checkUnrouted(err, resp, respBody)
	}
	s.mu.Lock()
	s.seen[Operation{Method: route.Method, Path: route.Path}]++
	s.mu.Unlock()

	reqIn := &openapi3filter.RequestValidationInput{
		Request:    in,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			AuthenticationFunc: bearer,
			MultiError:         true,
		},
	}
	reqErr := openapi3filter.ValidateRequest(in.Context(), reqIn)
	respErr := openapi3filter.ValidateResponse(in.Context(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: reqIn,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(respBody)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
	var errs []error
	if respErr != nil {
		errs = append(errs, fmt.Errorf("the answer is not one %s %s documents: %w", route.Method, route.Path, respErr))
	}
	if reqErr != nil && resp.StatusCode < 400 {
		errs = append(errs, fmt.Errorf("the core accepted (%d) a request the description of %s %s refuses: %w", resp.StatusCode, route.Method, route.Path, reqErr))
	}
	return errors.Join(errs...)
}

// checkUnrouted holds a request to no documented operation to the core's
// 404 and 405 answers.
func (s *Spec) checkUnrouted(routeErr error, resp *http.Response, respBody []byte) error {
	want := 0
	switch {
	case errors.Is(routeErr, routers.ErrPathNotFound):
		want = http.StatusNotFound
	case errors.Is(routeErr, routers.ErrMethodNotAllowed):
		want = http.StatusMethodNotAllowed
	default:
		return fmt.Errorf("route the request: %w", routeErr)
	}
	if resp.StatusCode != want {
		return fmt.Errorf("the request matches no documented operation (%v) but was answered %d, not %d", routeErr, resp.StatusCode, want)
	}
	schema := s.Doc.Components.Schemas["Error"]
	if schema == nil || schema.Value == nil {
		return errors.New("the description has no Error schema")
	}
	var v any
	if err := json.Unmarshal(respBody, &v); err != nil {
		return fmt.Errorf("%d answer is not JSON: %w: %q", want, err, respBody)
	}
	if err := schema.Value.VisitJSON(v); err != nil {
		return fmt.Errorf("%d answer is not in the error shape: %w", want, err)
	}
	return nil
}

// bearer stands in for authentication: the description's bearerAuth
// holds when the request carries "Authorization: Bearer TOKEN" (any
// case); whether the core knows the token is the core's to say.
func bearer(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	h := in.RequestValidationInput.Request.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return fmt.Errorf("%s: no bearer token", in.SecuritySchemeName)
	}
	return nil
}
