package client

import (
	"context"
	"net/http"
)

// Every call in this file needs an admin token.

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
	return do[[]Subject](ctx, c, http.MethodGet, "/v1/admin/subjects", nil)
}

// CreateSubject creates a (non-admin) subject and returns its token.
func (c *Client) CreateSubject(ctx context.Context, name string) (Credentials, error) {
	return do[Credentials](ctx, c, http.MethodPost, "/v1/admin/subjects", map[string]any{"subject": Named{Name: name}})
}

// RotateSubject issues a new token for a subject; the old one stops working.
func (c *Client) RotateSubject(ctx context.Context, name string) (Credentials, error) {
	return do[Credentials](ctx, c, http.MethodPut, pathOf("v1", "admin", "subjects", name), nil)
}

// RevokeSubject revokes a subject's token (rotate issues a new one).
func (c *Client) RevokeSubject(ctx context.Context, name string) error {
	return c.callJSON(ctx, http.MethodDelete, pathOf("v1", "admin", "subjects", name), nil, nil)
}
