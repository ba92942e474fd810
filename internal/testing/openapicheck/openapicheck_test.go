package openapicheck

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDescriptionIsValid loads docs/openapi.yaml: it parses, validates as
// OpenAPI 3.0 and routes.
func TestDescriptionIsValid(t *testing.T) {
	path, err := Path()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(spec.Operations()); n == 0 {
		t.Fatal("the description has no operations")
	}
}

const miniSpec = `openapi: 3.0.3
info: {title: t, version: v1}
security:
  - bearerAuth: []
paths:
  /v1/things/{name}:
    parameters:
      - {name: name, in: path, required: true, schema: {type: string}}
    put:
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: object
              additionalProperties: false
              required: [size]
              properties:
                size: {type: integer}
      responses:
        "200":
          description: ok
          content:
            application/json:
              schema:
                type: object
                required: [data]
                properties:
                  data: {type: object, required: [name], properties: {name: {type: string}}}
        "400": {$ref: "#/components/responses/Err"}
        "401": {$ref: "#/components/responses/Err"}
components:
  securitySchemes:
    bearerAuth: {type: http, scheme: bearer}
  responses:
    Err:
      description: error
      content:
        application/json:
          schema: {$ref: "#/components/schemas/Error"}
  schemas:
    Error:
      type: object
      required: [errors]
      properties:
        errors: {type: object, required: [detail], properties: {detail: {type: string}}}
`

// TestCheck shows which exchanges conform and which are reported.
func TestCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "openapi.yaml")
	if err := os.WriteFile(path, []byte(miniSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	const errBody = `{"errors":{"detail":"no"}}`
	for _, tc := range []struct {
		name, method, path, token, reqBody string
		status                             int
		respBody                           string
		want                               string // "" conforms; else a part of the error
	}{
		{"documented answer", "PUT", "/v1/things/a", "tok", `{"size":1}`, 200, `{"data":{"name":"a"}}`, ""},
		{"bad request refused", "PUT", "/v1/things/a", "tok", `{"size":"x"}`, 400, errBody, ""},
		{"no token refused", "PUT", "/v1/things/a", "", `{"size":1}`, 401, errBody, ""},
		{"bad request accepted", "PUT", "/v1/things/a", "tok", `{"size":1,"colour":"red"}`, 200, `{"data":{"name":"a"}}`, "accepted (200) a request"},
		{"no token accepted", "PUT", "/v1/things/a", "", `{"size":1}`, 200, `{"data":{"name":"a"}}`, "accepted (200) a request"},
		{"undocumented status", "PUT", "/v1/things/a", "tok", `{"size":1}`, 409, errBody, "status is not supported"},
		{"wrong answer shape", "PUT", "/v1/things/a", "tok", `{"size":1}`, 200, `{"name":"a"}`, "not one PUT /v1/things/{name} documents"},
		{"error not in the error shape", "PUT", "/v1/things/a", "tok", `{"size":1}`, 400, `{"error":"no"}`, "documents"},
		{"unknown path answered 404", "GET", "/v2/nothing", "tok", "", 404, errBody, ""},
		{"unknown method answered 405", "PATCH", "/v1/things/a", "tok", "", 405, errBody, ""},
		{"unknown path answered 200", "GET", "/v2/nothing", "tok", "", 200, `{}`, "matches no documented operation"},
		{"404 not in the error shape", "GET", "/v2/nothing", "tok", "", 404, `not found`, "not JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "http://127.0.0.1:9/"+strings.TrimPrefix(tc.path, "/"), strings.NewReader(tc.reqBody))
			if tc.reqBody != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if tc.token != "" {
				req.Header.Set("Authorization", "bearer "+tc.token)
			}
			resp := &http.Response{StatusCode: tc.status, Header: http.Header{"Content-Type": {"application/json"}}}
			err := spec.Check(req, []byte(tc.reqBody), resp, []byte(tc.respBody))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("reported a conforming exchange: %v", err)
			case tc.want != "" && err == nil:
				t.Errorf("a nonconforming exchange passed; want an error with %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
	if got := spec.Seen()[Operation{Method: "PUT", Path: "/v1/things/{name}"}]; got != 8 {
		t.Errorf("Seen counts %d exchanges of PUT /v1/things/{name}, want 8", got)
	}
}

// TestTransport sends through the checking RoundTripper: the caller still
// reads both bodies, and a nonconforming answer is reported.
func TestTransport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "openapi.yaml")
	if err := os.WriteFile(path, []byte(miniSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("X-Break") != "" {
			w.Write([]byte(`{"name":"broken"}`))
			return
		}
		w.Write([]byte(`{"data":{"name":"a"}}`))
	}))
	defer srv.Close()
	var reported []error
	cl := &http.Client{Transport: spec.Transport(nil, func(err error) { reported = append(reported, err) })}
	for _, brk := range []bool{false, true} {
		req, _ := http.NewRequest("PUT", srv.URL+"/v1/things/a", strings.NewReader(`{"size":1}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer tok")
		if brk {
			req.Header.Set("X-Break", "1")
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || len(b) == 0 {
			t.Errorf("the caller could not read the answer: %q %v", b, err)
		}
	}
	if len(reported) != 1 || !strings.Contains(reported[0].Error(), "PUT /v1/things/a answered 200") {
		t.Errorf("reported %v, want one error for the broken answer", reported)
	}
}
