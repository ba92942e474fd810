// Package client is a small typed Go client for the edgefaas REST API
// (FunLess's API v1 plus edgefaas's additions). The edgefaas command line,
// the integration tests and the benchmarks use it.
//
// Every method takes a context, sends the bearer token the Client was made
// with, and returns the decoded "data" of the answer. Failures the API
// reports come back as *Error, whose message is the API's
// {"errors":{"detail":...}}; failures to reach the core come back as
// *UnreachableError.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultHost is the address of a core started with default flags.
const DefaultHost = "http://127.0.0.1:4000"

// DefaultModule is the module that always exists; FunLess calls it "_".
const DefaultModule = "_"

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// Client talks to one edgefaas core. Its fields may be changed between
// calls but not during them. The zero value is not usable: use New.
type Client struct {
	// BaseURL is the core's address, e.g. http://127.0.0.1:4000 (a path
	// prefix is kept, for cores behind a reverse proxy).
	BaseURL *url.URL
	// Token is sent as "Authorization: Bearer <Token>"; empty sends none.
	Token string
	// HTTP is the client requests go through.
	HTTP *http.Client
	// UserAgent is sent with every request.
	UserAgent string
}

// New returns a client for the core at host ("http://h:p", "https://h",
// or a bare "h:p", which means http) that authenticates with token.
func New(host, token string) (*Client, error) {
	u, err := ParseHost(host)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = 0 // invocations may take as long as the function's timeout
	return &Client{
		BaseURL:   u,
		Token:     token,
		HTTP:      &http.Client{Transport: tr},
		UserAgent: "edgefaas-client",
	}, nil
}

// ParseHost normalises a core address: it adds http:// when no scheme is
// given and drops a trailing slash.
func ParseHost(host string) (*url.URL, error) {
	h := strings.TrimSpace(host)
	if h == "" {
		return nil, errors.New("the core's address is empty")
	}
	if !strings.Contains(h, "://") {
		h = "http://" + h
	}
	u, err := url.Parse(h)
	if err != nil {
		return nil, fmt.Errorf("the core's address %q is not a URL: %w", host, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("the core's address %q must use http or https, not %q", host, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("the core's address %q has no host", host)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("the core's address %q must not have a query or fragment", host)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// Error is a failure the API answered with: its status and the detail of
// FunLess's {"errors":{"detail":...}} body.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Detail is the API's message, meant for a person.
	Detail string
	// Method and Path are the request that failed.
	Method, Path string
	// RetryAfter is the Retry-After header, if any (429, 503).
	RetryAfter string
}

// Error returns the API's message.
func (e *Error) Error() string { return e.Detail }

// IsStatus reports whether err is (or wraps) an *Error with the status.
func IsStatus(err error, status int) bool {
	var ae *Error
	return errors.As(err, &ae) && ae.Status == status
}

// UnreachableError means the core could not be reached at all (connection
// refused, DNS, TLS, timeout), as opposed to an error the API answered.
type UnreachableError struct {
	// URL is the core's address.
	URL string
	// Err is the transport's error.
	Err error
}

// Error describes the address and the cause.
func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the edgefaas core at %s: %v", e.URL, rootCause(e.Err))
}

// Unwrap returns the transport's error.
func (e *UnreachableError) Unwrap() error { return e.Err }

// rootCause strips url.Error's "Post \"http://...\":" prefix, which repeats
// what UnreachableError already says.
func rootCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		var oe *net.OpError
		if errors.As(ue.Err, &oe) && oe.Err != nil {
			return oe.Err
		}
		return ue.Err
	}
	return err
}

// request is one API call.
type request struct {
	method      string
	path        string // escaped, starting with /
	contentType string
	body        io.Reader
	size        int64 // body length, -1 if unknown
}

// pathOf builds an escaped API path from literal segments.
func pathOf(segments ...string) string {
	var b strings.Builder
	for _, s := range segments {
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// jsonRequest builds a request with a JSON body (nil body sends none).
func jsonRequest(method, path string, body any) (request, error) {
	r := request{method: method, path: path, size: -1}
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return r, fmt.Errorf("encode the request body: %w", err)
		}
		r.contentType, r.body, r.size = "application/json", bytes.NewReader(raw), int64(len(raw))
	}
	return r, nil
}

// send performs the request and returns the answer's raw body on 2xx, an
// *Error otherwise.
func (c *Client) send(ctx context.Context, r request) (status int, body []byte, err error) {
	if c == nil || c.BaseURL == nil {
		return 0, nil, errors.New("client: no core address; use client.New")
	}
	full := strings.TrimRight(c.BaseURL.String(), "/") + r.path
	req, err := http.NewRequestWithContext(ctx, r.method, full, r.body)
	if err != nil {
		return 0, nil, fmt.Errorf("build request %s %s: %w", r.method, r.path, err)
	}
	if r.size >= 0 {
		req.ContentLength = r.size
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	req.Header.Set("Accept", "application/json")
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil, fmt.Errorf("%s %s: %w", r.method, r.path, ctx.Err())
		}
		return 0, nil, &UnreachableError{URL: c.BaseURL.String(), Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return resp.StatusCode, nil, &Error{
			Status: resp.StatusCode, Detail: errorDetail(resp, raw),
			Method: r.method, Path: r.path, RetryAfter: resp.Header.Get("Retry-After"),
		}
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: read the answer: %w", r.method, r.path, err)
	}
	return resp.StatusCode, raw, nil
}

// errorDetail extracts FunLess's error detail, or summarises an answer of
// another shape (a proxy's HTML page, say) without dumping it.
func errorDetail(resp *http.Response, raw []byte) string {
	var e struct {
		Errors struct {
			Detail *string `json:"detail"`
		} `json:"errors"`
	}
	if json.Unmarshal(raw, &e) == nil && e.Errors.Detail != nil && *e.Errors.Detail != "" {
		return *e.Errors.Detail
	}
	msg := fmt.Sprintf("the server answered %s", resp.Status)
	if resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed {
		msg += " (is this an edgefaas core, and is it recent enough for this command?)"
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(raw)), "\n")
	if ct := resp.Header.Get("Content-Type"); line != "" && strings.HasPrefix(ct, "text/plain") {
		if len(line) > 200 {
			line = line[:200] + "…"
		}
		msg += ": " + line
	}
	return msg
}

// call sends r and decodes the answer's "data" into out (if not nil).
func (c *Client) call(ctx context.Context, r request, out any) error {
	_, raw, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	data, err := envelope(raw)
	if err != nil {
		return fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode the answer's data: %w", r.method, r.path, err)
	}
	return nil
}

// callJSON sends a request with body as JSON (nil sends none) and decodes
// the answer's "data" into out (if not nil).
func (c *Client) callJSON(ctx context.Context, method, path string, body, out any) error {
	r, err := jsonRequest(method, path, body)
	if err != nil {
		return err
	}
	return c.call(ctx, r, out)
}

// do is callJSON for an answer whose "data" is a T; on error it returns
// the zero T.
func do[T any](ctx context.Context, c *Client, method, path string, body any) (T, error) {
	var out T
	if err := c.callJSON(ctx, method, path, body, &out); err != nil {
		var zero T
		return zero, err
	}
	return out, nil
}

// envelope returns the "data" member of a success answer.
func envelope(raw []byte) (json.RawMessage, error) {
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return nil, fmt.Errorf("the answer is not JSON: %w", err)
	}
	if env.Data == nil {
		return nil, errors.New(`the answer has no "data" member`)
	}
	return env.Data, nil
}

// Ping checks that the core answers GET /v1/ (no token needed).
func (c *Client) Ping(ctx context.Context) error {
	_, _, err := c.send(ctx, request{method: http.MethodGet, path: "/v1/", size: -1})
	return err
}
