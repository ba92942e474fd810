package client

import (
	"context"
	"net/http"
)

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
	return do[[]Named](ctx, c, http.MethodGet, "/v1/fn", nil)
}

// CreateModule creates a module owned by the caller.
func (c *Client) CreateModule(ctx context.Context, name string) error {
	return c.callJSON(ctx, http.MethodPost, "/v1/fn", map[string]any{"module": Named{Name: name}}, nil)
}

// GetModule returns a module with its functions' names.
func (c *Client) GetModule(ctx context.Context, name string) (Module, error) {
	m, err := do[Module](ctx, c, http.MethodGet, pathOf("v1", "fn", name), nil)
	if m.Functions == nil {
		m.Functions = []Named{}
	}
	return m, err
}

// ModuleDetails is a module with the records of the functions in it the
// caller may see.
type ModuleDetails struct {
	// Name is the module's name.
	Name string `json:"name"`
	// Functions are the functions' records, as GetFunction returns them.
	Functions []Function `json:"functions"`
}

// GetModuleDetails returns a module with its functions' records in one
// request (GET /v1/fn/:mod?details=true).
func (c *Client) GetModuleDetails(ctx context.Context, name string) (ModuleDetails, error) {
	m, err := do[ModuleDetails](ctx, c, http.MethodGet, pathOf("v1", "fn", name)+"?details=true", nil)
	if m.Functions == nil {
		m.Functions = []Function{}
	}
	return m, err
}

// RenameModule renames module from to to; its functions move with it.
func (c *Client) RenameModule(ctx context.Context, from, to string) error {
	return c.callJSON(ctx, http.MethodPut, pathOf("v1", "fn", from), map[string]any{"module": Named{Name: to}}, nil)
}

// DeleteModule deletes a module and every function in it.
func (c *Client) DeleteModule(ctx context.Context, name string) error {
	return c.callJSON(ctx, http.MethodDelete, pathOf("v1", "fn", name), nil, nil)
}
