package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

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
	// ABI is the calling convention found in the code ("funless", "wasi"), or
	// "js" for a JavaScript function.
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
	// (the core may still be working: inspecting, or waiting for workers);
	// from 0 again if the upload goes on to another core of a group.
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
	r := request{method: method, path: path, contentType: ct, body: body.Bytes(), progress: up.Progress}
	var f Function
	err = c.call(ctx, r, &f)
	return f, err
}

// GetFunction returns a function's record.
func (c *Client) GetFunction(ctx context.Context, module, name string) (Function, error) {
	return do[Function](ctx, c, http.MethodGet, pathOf("v1", "fn", module, name), nil)
}

// DeleteFunction deletes a function; workers drop their copies.
func (c *Client) DeleteFunction(ctx context.Context, module, name string) error {
	return c.callJSON(ctx, http.MethodDelete, pathOf("v1", "fn", module, name), nil, nil)
}

// Invoke runs a function with args (a JSON object; nil sends {}) and
// returns its JSON output. A function that reports an error gives an
// *Error with status 422 and the function's message.
func (c *Client) Invoke(ctx context.Context, module, name string, args json.RawMessage) (json.RawMessage, error) {
	return do[json.RawMessage](ctx, c, http.MethodPost, pathOf("v1", "fn", module, name), invokeBody(args))
}

// invokeBody is the body of an invocation with args; nil or empty args
// send {}.
func invokeBody(args json.RawMessage) map[string]any {
	if len(args) == 0 {
		args = json.RawMessage(`{}`)
	}
	return map[string]any{"args": args}
}
