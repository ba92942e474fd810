package client

import (
	"context"
	"net/http"
)

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
	return do[EgressBound](ctx, c, http.MethodGet, pathOf("v1", "admin", "subjects", name, "egress"), nil)
}

// SetSubjectEgress sets a subject's egress bound (an empty list permits nothing).
func (c *Client) SetSubjectEgress(ctx context.Context, name string, hosts []string) (EgressBound, error) {
	if hosts == nil {
		hosts = []string{}
	}
	return do[EgressBound](ctx, c, http.MethodPut, pathOf("v1", "admin", "subjects", name, "egress"), map[string]any{"hosts": hosts})
}

// ClearSubjectEgress removes a subject's bound (the node-wide policy alone applies).
func (c *Client) ClearSubjectEgress(ctx context.Context, name string) error {
	return c.callJSON(ctx, http.MethodDelete, pathOf("v1", "admin", "subjects", name, "egress"), nil, nil)
}
