// Package client is a small typed Go client for the edgefaas REST API
// (FunLess's API v1 plus edgefaas's additions). The edgefaas command line,
// the integration tests and the benchmarks use it.
//
// Every method takes a context, sends the bearer token the Client was made
// with, and returns the decoded "data" of the answer. Failures the API
// reports come back as *Error, whose message is the API's
// {"errors":{"detail":...}}; failures to reach the core come back as
// *UnreachableError.
//
// A Client may be given the addresses of several cores, the members of a
// core group: it uses one, the last that answered, and fails over to the
// next when a request surely did not reach a core (the connection was
// refused) or the core says the group refused the write without taking
// it. A request that may have been acted on is sent again only if its
// method is idempotent (GET, HEAD, PUT, DELETE): a POST, an invocation
// above all, is never sent twice.
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
	"sync/atomic"
	"time"
)

// DefaultHost is the address of a core started with default flags.
const DefaultHost = "http://127.0.0.1:4000"

// DefaultModule is the module that always exists; FunLess calls it "_".
const DefaultModule = "_"

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// Client talks to one edgefaas core, or to the cores of a group. Its
// fields may be changed between calls but not during them; its methods
// may be called concurrently. The zero value is not usable: use New.
type Client struct {
	// Cores are the cores' addresses, e.g. http://127.0.0.1:4000 (a path
	// prefix is kept, for cores behind a reverse proxy): one core, or the
	// members of a core group, tried in this order from the one in use.
	Cores []*url.URL
	// Token is sent as "Authorization: Bearer <Token>"; empty sends none.
	Token string
	// HTTP is the client requests go through.
	HTTP *http.Client
	// UserAgent is sent with every request.
	UserAgent string

	// current is the index in Cores of the core in use: the last one that
	// answered.
	current atomic.Int32
}

// GroupWriteHeader is the header a core of a group adds to its 503 for a
// write the group could not take: GroupWriteRefused when the write was
// not applied (no leader was reachable), GroupWriteUnknown when the
// leader was lost after taking it (it may have been applied).
const (
	GroupWriteHeader  = "Edgefaas-Group-Write"
	GroupWriteRefused = "refused"
	GroupWriteUnknown = "unknown"
)

// New returns a client for the core at hosts ("http://h:p", "https://h",
// or a bare "h:p", which means http) that authenticates with token.
// hosts may name several cores, separated by commas: the members of a
// core group, used in that order (see Client).
func New(hosts, token string) (*Client, error) {
	us, err := ParseHosts(hosts)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = 0 // invocations may take as long as the function's timeout
	return &Client{
		Cores:     us,
		Token:     token,
		HTTP:      &http.Client{Transport: tr},
		UserAgent: "edgefaas-client",
	}, nil
}

// ParseHosts parses a comma-separated list of core addresses with
// ParseHost; an address given twice is an error.
func ParseHosts(hosts string) ([]*url.URL, error) {
	var us []*url.URL
	seen := map[string]bool{}
	for _, h := range strings.Split(hosts, ",") {
		u, err := ParseHost(h)
		if err != nil {
			if strings.Contains(hosts, ",") {
				return nil, fmt.Errorf("the cores' addresses %q: %w", hosts, err)
			}
			return nil, err
		}
		if seen[u.String()] {
			return nil, fmt.Errorf("the cores' addresses %q name %s twice", hosts, u)
		}
		seen[u.String()] = true
		us = append(us, u)
	}
	return us, nil
}

// Core returns the address of the core in use: the last that answered,
// else the first; nil when the client has none.
func (c *Client) Core() *url.URL {
	if c == nil || len(c.Cores) == 0 {
		return nil
	}
	i := int(c.current.Load())
	if i < 0 || i >= len(c.Cores) {
		i = 0
	}
	return c.Cores[i]
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
	// GroupWrite is a core group's word on a write it answered 503
	// (GroupWriteHeader): GroupWriteRefused, GroupWriteUnknown, or empty.
	GroupWrite string
}

// Error returns the API's message.
func (e *Error) Error() string { return e.Detail }

// IsStatus reports whether err is (or wraps) an *Error with the status.
func IsStatus(err error, status int) bool {
	var ae *Error
	return errors.As(err, &ae) && ae.Status == status
}

// UnreachableError means the core could not be reached at all (connection
// refused, DNS, TLS, timeout), as opposed to an error the API answered;
// with several cores, that none could be.
type UnreachableError struct {
	// URL is the core's address; with several cores, their addresses
	// separated by ", ".
	URL string
	// Err is the transport's error.
	Err error
}

// Error describes the address and the cause.
func (e *UnreachableError) Error() string {
	if cs, ok := e.Err.(causes); ok {
		return fmt.Sprintf("cannot reach any of the edgefaas cores %s: %v", e.URL, cs)
	}
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
	body        []byte // nil sends none; sent again to another core
	// progress, if not nil, is told how much of body was sent (from 0
	// again when the request goes to another core).
	progress func(sent, total int64, done bool)
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
	r := request{method: method, path: path}
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return r, fmt.Errorf("encode the request body: %w", err)
		}
		r.contentType, r.body = "application/json", raw
	}
	return r, nil
}

// send performs the request on the core in use, failing over to the
// others as the package's documentation says, and returns the answer's
// raw body on 2xx, an *Error otherwise.
func (c *Client) send(ctx context.Context, r request) (status int, body []byte, err error) {
	if c == nil || len(c.Cores) == 0 {
		return 0, nil, errors.New("client: no core address; use client.New")
	}
	n := len(c.Cores)
	first := int(c.current.Load())
	if first < 0 || first >= n {
		first = 0
	}
	var (
		unreachable causes
		refusal     *Error // the last answer that sent the request on
	)
	for i := range n {
		k := (first + i) % n
		status, body, next, err := c.sendTo(ctx, c.Cores[k], r)
		var ue *UnreachableError
		if errors.As(err, &ue) {
			unreachable = append(unreachable, ue)
		}
		if next && ctx.Err() == nil && i < n-1 {
			errors.As(err, &refusal)
			continue
		}
		if !next {
			c.current.Store(int32(k)) // sticky: the core that answered
		}
		if next && ue != nil && refusal != nil { // a core's answer says more than a refused connection
			return refusal.Status, nil, refusal
		}
		if n > 1 && len(unreachable) == n {
			urls := make([]string, n)
			for j, u := range c.Cores {
				urls[j] = u.String()
			}
			err = &UnreachableError{URL: strings.Join(urls, ", "), Err: unreachable}
		}
		return status, body, err
	}
	return 0, nil, errors.New("client: no core tried")
}

// causes are the errors of the cores none of which could be reached.
type causes []*UnreachableError

func (cs causes) Error() string {
	s := make([]string, len(cs))
	for i, e := range cs {
		s[i] = e.URL + ": " + rootCause(e.Err).Error()
	}
	return strings.Join(s, "; ")
}

func (cs causes) Unwrap() []error {
	errs := make([]error, len(cs))
	for i, e := range cs {
		errs[i] = e
	}
	return errs
}

// idempotent reports whether a request with method may be sent again
// after it may have been acted on.
func idempotent(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodOptions:
		return true
	}
	return false
}

// notSent reports whether a transport error happened before the request
// left: the connection to the core could not be made.
func notSent(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// sendTo performs the request on the core at base; next reports whether
// the request may and should go to the next core instead: it surely did
// not reach this one, or the group refused the write without applying
// it, or the method is idempotent and this core failed it.
func (c *Client) sendTo(ctx context.Context, base *url.URL, r request) (status int, body []byte, next bool, err error) {
	full := strings.TrimRight(base.String(), "/") + r.path
	var rd io.Reader
	if r.body != nil {
		rd = bytes.NewReader(r.body)
		if r.progress != nil {
			rd = &progressReader{r: rd, total: int64(len(r.body)), fn: r.progress}
		}
	}
	req, err := http.NewRequestWithContext(ctx, r.method, full, rd)
	if err != nil {
		return 0, nil, false, fmt.Errorf("build request %s %s: %w", r.method, r.path, err)
	}
	req.ContentLength = int64(len(r.body))
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
			return 0, nil, false, fmt.Errorf("%s %s: %w", r.method, r.path, ctx.Err())
		}
		return 0, nil, notSent(err) || idempotent(r.method), &UnreachableError{URL: base.String(), Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		e := &Error{
			Status: resp.StatusCode, Detail: errorDetail(resp, raw),
			Method: r.method, Path: r.path, RetryAfter: resp.Header.Get("Retry-After"),
			GroupWrite: resp.Header.Get(GroupWriteHeader),
		}
		next := false
		if resp.StatusCode == http.StatusServiceUnavailable {
			switch e.GroupWrite {
			case GroupWriteRefused:
				next = true
			case GroupWriteUnknown:
				next = idempotent(r.method)
			}
		}
		return resp.StatusCode, nil, next, e
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			return resp.StatusCode, nil, false, fmt.Errorf("%s %s: read the answer: %w", r.method, r.path, ctx.Err())
		}
		return resp.StatusCode, nil, idempotent(r.method), fmt.Errorf("%s %s: read the answer from %s: %w", r.method, r.path, base, err)
	}
	return resp.StatusCode, raw, false, nil
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
	_, _, err := c.send(ctx, request{method: http.MethodGet, path: "/v1/"})
	return err
}
