package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// ---- modules ----

// Module is a module and the names of the functions in it the caller may
// see.
type Module struct {
	// Name is the module's name.
	Name string `json:"name"`
	// Functions lists the module's functions by name (only from GetModule).
	Functions []Named `json:"functions,omitempty"`
}

// Named is an object with only a name, as FunLess lists things.
type Named struct {
	// Name is the object's name.
	Name string `json:"name"`
}

// ListModules returns the modules the caller may see.
func (c *Client) ListModules(ctx context.Context) ([]Named, error) {
	r, _ := jsonRequest(http.MethodGet, "/v1/fn", nil)
	var out []Named
	if err := c.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// CreateModule creates a module owned by the caller.
func (c *Client) CreateModule(ctx context.Context, name string) error {
	r, err := jsonRequest(http.MethodPost, "/v1/fn", map[string]any{"module": Named{Name: name}})
	if err != nil {
		return err
	}
	return c.call(ctx, r, nil)
}

// GetModule returns a module with its functions' names.
func (c *Client) GetModule(ctx context.Context, name string) (Module, error) {
	r, _ := jsonRequest(http.MethodGet, pathOf("v1", "fn", name), nil)
	var m Module
	err := c.call(ctx, r, &m)
	if m.Functions == nil {
		m.Functions = []Named{}
	}
	return m, err
}

// RenameModule renames module from to to; its functions move with it.
func (c *Client) RenameModule(ctx context.Context, from, to string) error {
	r, err := jsonRequest(http.MethodPut, pathOf("v1", "fn", from), map[string]any{"module": Named{Name: to}})
	if err != nil {
		return err
	}
	return c.call(ctx, r, nil)
}

// DeleteModule deletes a module and every function in it.
func (c *Client) DeleteModule(ctx context.Context, name string) error {
	r, _ := jsonRequest(http.MethodDelete, pathOf("v1", "fn", name), nil)
	return c.call(ctx, r, nil)
}

// ---- functions ----

// Metadata is what a function declares about itself.
type Metadata struct {
	// Tag is a free label.
	Tag string `json:"tag"`
	// Capacity is the memory the function needs, in MiB (0: undeclared).
	Capacity int64 `json:"capacity"`
	// TimeoutMS bounds one invocation in milliseconds (0: platform default).
	TimeoutMS int64 `json:"timeout_ms"`
	// AllowedHosts lists the hosts the function may reach over HTTP.
	AllowedHosts []string `json:"allowed_hosts"`
	// Idempotent lets the core rerun an asynchronous call that may have
	// run when its worker or the core was lost (otherwise it ends "lost").
	Idempotent bool `json:"idempotent,omitempty"`
}

// Function is a stored function's record.
type Function struct {
	// Module and Name identify the function.
	Module string `json:"module"`
	Name   string `json:"name"`
	// Owner is the subject that created it.
	Owner string `json:"owner"`
	// Hash is the sha256 of the code, in hex.
	Hash string `json:"hash"`
	// ABI is the calling convention found in the code ("funless", "wasi").
	ABI string `json:"abi"`
	// Size is the code's size in bytes.
	Size int64 `json:"size"`
	// Metadata is what the function declared.
	Metadata Metadata `json:"metadata"`
	// Events are the function's triggers (MQTT, cron), as uploaded.
	Events json.RawMessage `json:"events,omitempty"`
	// Sinks are where the function's results are delivered, as uploaded
	// (secrets shown as REDACTED).
	Sinks json.RawMessage `json:"sinks,omitempty"`
	// Version starts at 1 and grows at every update.
	Version uint64 `json:"version"`
	// CreatedAt and UpdatedAt are the core's timestamps.
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Upload is the content of a function create or update.
type Upload struct {
	// Name is the function's name (required to create; on update it may be
	// empty, or must equal the function's name).
	Name string
	// Code is the .wasm module; nil sends no code (update of metadata only).
	Code []byte
	// Filename is the code part's file name; "function.wasm" if empty.
	Filename string
	// Metadata, if not nil, is sent; on update it replaces the stored one.
	Metadata *Metadata
	// Events, if not nil, is sent as the events field (the function's
	// triggers, a JSON list); on update it replaces them ([] removes them).
	Events json.RawMessage
	// Sinks, if not nil, is sent as the sinks field (where the function's
	// results are delivered, a JSON list); on update it replaces them ([]
	// removes them).
	Sinks json.RawMessage
	// WaitForWorkers, if not nil, sets wait_for_workers: whether the answer
	// waits until connected workers hold (and have compiled) the code.
	WaitForWorkers *bool
	// Progress, if not nil, is called as the body is sent with the bytes
	// sent so far and the total, and once with done=true when all is sent
	// (the core may still be working: inspecting, or waiting for workers).
	Progress func(sent, total int64, done bool)
}

// CreateFunction uploads a new function into module.
func (c *Client) CreateFunction(ctx context.Context, module string, up Upload) (Function, error) {
	if up.Name == "" {
		return Function{}, fmt.Errorf("create function: no name given")
	}
	if up.Code == nil {
		return Function{}, fmt.Errorf("create function %s/%s: no code given", module, up.Name)
	}
	return c.upload(ctx, http.MethodPost, pathOf("v1", "fn", module), up)
}

// UpdateFunction replaces a function's code and/or metadata.
func (c *Client) UpdateFunction(ctx context.Context, module, name string, up Upload) (Function, error) {
	if up.Code == nil && up.Metadata == nil && up.Events == nil && up.Sinks == nil {
		return Function{}, fmt.Errorf("update function %s/%s: nothing to update: give new code and/or metadata", module, name)
	}
	return c.upload(ctx, http.MethodPut, pathOf("v1", "fn", module, name), up)
}

// upload sends a FunLess multipart upload.
func (c *Client) upload(ctx context.Context, method, path string, up Upload) (Function, error) {
	ct, body, err := encodeUpload(up)
	if err != nil {
		return Function{}, err
	}
	r := request{method: method, path: path, contentType: ct, body: body, size: int64(body.Len())}
	if up.Progress != nil {
		r.body = &progressReader{r: body, total: r.size, fn: up.Progress}
	}
	var f Function
	err = c.call(ctx, r, &f)
	return f, err
}

// GetFunction returns a function's record.
func (c *Client) GetFunction(ctx context.Context, module, name string) (Function, error) {
	r, _ := jsonRequest(http.MethodGet, pathOf("v1", "fn", module, name), nil)
	var f Function
	err := c.call(ctx, r, &f)
	return f, err
}

// DeleteFunction deletes a function; workers drop their copies.
func (c *Client) DeleteFunction(ctx context.Context, module, name string) error {
	r, _ := jsonRequest(http.MethodDelete, pathOf("v1", "fn", module, name), nil)
	return c.call(ctx, r, nil)
}

// Invoke runs a function with args (a JSON object; nil sends {}) and
// returns its JSON output. A function that reports an error gives an
// *Error with status 422 and the function's message.
func (c *Client) Invoke(ctx context.Context, module, name string, args json.RawMessage) (json.RawMessage, error) {
	if len(args) == 0 {
		args = json.RawMessage(`{}`)
	}
	r, err := jsonRequest(http.MethodPost, pathOf("v1", "fn", module, name), map[string]json.RawMessage{"args": args})
	if err != nil {
		return nil, err
	}
	var out json.RawMessage
	if err := c.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// ---- subjects (admin token) ----

// Subject is a user of the platform.
type Subject struct {
	// Name is the subject's name.
	Name string `json:"name"`
	// Admin subjects may manage subjects and see every module.
	Admin bool `json:"admin"`
	// Revoked subjects' tokens are refused.
	Revoked bool `json:"revoked"`
}

// Credentials are a subject's name and its new token.
type Credentials struct {
	// Name is the subject's name.
	Name string `json:"name"`
	// Token is the bearer token; it is shown only once.
	Token string `json:"token"`
}

// ListSubjects returns every subject.
func (c *Client) ListSubjects(ctx context.Context) ([]Subject, error) {
	r, _ := jsonRequest(http.MethodGet, "/v1/admin/subjects", nil)
	var out []Subject
	if err := c.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// CreateSubject creates a (non-admin) subject and returns its token.
func (c *Client) CreateSubject(ctx context.Context, name string) (Credentials, error) {
	r, err := jsonRequest(http.MethodPost, "/v1/admin/subjects", map[string]any{"subject": Named{Name: name}})
	if err != nil {
		return Credentials{}, err
	}
	var cr Credentials
	err = c.call(ctx, r, &cr)
	return cr, err
}

// RotateSubject issues a new token for a subject; the old one stops working.
func (c *Client) RotateSubject(ctx context.Context, name string) (Credentials, error) {
	r, _ := jsonRequest(http.MethodPut, pathOf("v1", "admin", "subjects", name), nil)
	var cr Credentials
	err := c.call(ctx, r, &cr)
	return cr, err
}

// RevokeSubject revokes a subject's token (rotate issues a new one).
func (c *Client) RevokeSubject(ctx context.Context, name string) error {
	r, _ := jsonRequest(http.MethodDelete, pathOf("v1", "admin", "subjects", name), nil)
	return c.call(ctx, r, nil)
}

// ---- nodes ----

// Node is a worker as the core sees it (GET /v1/nodes).
type Node struct {
	// Name is the node's name, e.g. worker@10.0.0.7.
	Name string `json:"name"`
	// Arch and OS are the worker's GOARCH and GOOS.
	Arch string `json:"arch"`
	OS   string `json:"os"`
	// Tags are the worker's labels.
	Tags []string `json:"tags"`
	// TotalMemory is the memory the worker offers to functions (its
	// guests' share of its budget) and FreeMemory what of it is free now,
	// in bytes.
	TotalMemory int64 `json:"total_memory"`
	FreeMemory  int64 `json:"free_memory"`
	// MemoryBudget is the worker node's whole memory budget (--memory,
	// else its cgroup limit, else a share of MemAvailable), MemoryInUse its
	// resident set and MemoryReserved what its guests and compiled code
	// hold, in bytes (0 from a worker that predates them).
	MemoryBudget   int64 `json:"memory_budget"`
	MemoryInUse    int64 `json:"memory_in_use"`
	MemoryReserved int64 `json:"memory_reserved"`
	// Load is (running + queued) / MaxRunning.
	Load float64 `json:"load"`
	// Running and Queued count invocations; MaxRunning is the worker's
	// concurrency limit.
	Running    int64 `json:"running"`
	Queued     int64 `json:"queued"`
	MaxRunning int64 `json:"max_running"`
	// Functions are the hashes of the code compiled on the worker.
	Functions []string `json:"functions"`
	// Invocations counts the invocations the worker started since it started.
	Invocations int64 `json:"invocations"`
	// LastReport is when the worker last reported its state.
	LastReport time.Time `json:"last_report"`
}

// ListNodes returns the workers connected to the core.
func (c *Client) ListNodes(ctx context.Context) ([]Node, error) {
	r, _ := jsonRequest(http.MethodGet, "/v1/nodes", nil)
	var out []Node
	if err := c.call(ctx, r, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// ConnectNode asks the core to attach the worker at address, written
// "name@host:port" (admin token). The core answers once the worker is
// attached (200) or the attempt has started (202); accepted tells which.
func (c *Client) ConnectNode(ctx context.Context, address string) (accepted bool, err error) {
	r, err := jsonRequest(http.MethodPost, "/v1/nodes", map[string]any{"node": map[string]string{"address": address}})
	if err != nil {
		return false, err
	}
	status, _, err := c.send(ctx, r)
	return status == http.StatusAccepted, err
}

// ---- per-subject egress bounds ----

// EgressBound is the operator's bound on one subject's outbound grants.
type EgressBound struct {
	// Subject is the subject's name.
	Subject string `json:"subject"`
	// Hosts are the patterns permitted (host, host:port, *.domain, *).
	Hosts []string `json:"hosts"`
	// Bounded is false when no bound is set (the node-wide policy alone).
	Bounded bool `json:"bounded"`
}

// SubjectEgress returns a subject's egress bound.
func (c *Client) SubjectEgress(ctx context.Context, name string) (EgressBound, error) {
	r, _ := jsonRequest(http.MethodGet, pathOf("v1", "admin", "subjects", name, "egress"), nil)
	var out EgressBound
	err := c.call(ctx, r, &out)
	return out, err
}

// SetSubjectEgress sets a subject's egress bound (an empty list permits nothing).
func (c *Client) SetSubjectEgress(ctx context.Context, name string, hosts []string) (EgressBound, error) {
	if hosts == nil {
		hosts = []string{}
	}
	r, err := jsonRequest(http.MethodPut, pathOf("v1", "admin", "subjects", name, "egress"), map[string]any{"hosts": hosts})
	if err != nil {
		return EgressBound{}, err
	}
	var out EgressBound
	err = c.call(ctx, r, &out)
	return out, err
}

// ClearSubjectEgress removes a subject's bound (the node-wide policy alone applies).
func (c *Client) ClearSubjectEgress(ctx context.Context, name string) error {
	r, _ := jsonRequest(http.MethodDelete, pathOf("v1", "admin", "subjects", name, "egress"), nil)
	return c.call(ctx, r, nil)
}

// ---- node credentials ----

// JoinToken is a one-time credential a worker joins with
// (`edgefaas worker --join-token`).
type JoinToken struct {
	// Token is shown once: TOKEN, or TOKEN.FINGERPRINT when the core's API
	// serves HTTPS (the worker pins that certificate).
	Token string `json:"token"`
	// Node, if set, is the only node name the token may enroll.
	Node string `json:"node"`
	// ExpiresAt is when the token stops working if unused.
	ExpiresAt time.Time `json:"expires_at"`
}

// CreateJoinToken issues a one-time join token valid for ttl (0: one
// hour), for node (empty: any name) (admin token).
func (c *Client) CreateJoinToken(ctx context.Context, ttl time.Duration, node string) (JoinToken, error) {
	body := map[string]any{"ttl_seconds": int(ttl / time.Second)}
	if node != "" {
		body["node"] = node
	}
	r, err := jsonRequest(http.MethodPost, "/v1/admin/join-tokens", body)
	if err != nil {
		return JoinToken{}, err
	}
	var out JoinToken
	err = c.call(ctx, r, &out)
	return out, err
}

// RevokeNode makes the core refuse a token-joined node's certificate from
// now on and drop its link (admin token).
func (c *Client) RevokeNode(ctx context.Context, name string) error {
	r, _ := jsonRequest(http.MethodPost, pathOf("v1", "admin", "nodes", name, "revoke"), nil)
	return c.call(ctx, r, nil)
}

// RotateNode issues a token-joined node a new certificate over its live
// link and returns its serial (admin token).
func (c *Client) RotateNode(ctx context.Context, name string) (string, error) {
	r, _ := jsonRequest(http.MethodPost, pathOf("v1", "admin", "nodes", name, "rotate"), nil)
	var out struct {
		Serial string `json:"serial"`
	}
	err := c.call(ctx, r, &out)
	return out.Serial, err
}

// NodeCert is a token-joined node's certificate as the core records it.
type NodeCert struct {
	// Node is the node's name.
	Node string `json:"node"`
	// Serial is the certificate it must present (hex).
	Serial string `json:"serial"`
	// Rotating: the previous certificate is accepted until the node uses the new one.
	Rotating bool `json:"rotating"`
	// IssuedAt is when the current certificate was issued.
	IssuedAt time.Time `json:"issued_at"`
	// Revoked nodes are refused; RevokedAt says since when.
	Revoked   bool       `json:"revoked"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// ListNodeCerts returns the token-joined nodes' certificates (admin token).
func (c *Client) ListNodeCerts(ctx context.Context) ([]NodeCert, error) {
	r, _ := jsonRequest(http.MethodGet, "/v1/admin/node-certificates", nil)
	var out []NodeCert
	err := c.call(ctx, r, &out)
	return out, err
}
