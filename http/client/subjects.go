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
