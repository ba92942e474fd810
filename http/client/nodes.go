package client

import (
	"context"
	"net/http"
	"time"
)

// Node is a worker as the core sees it (GET /v1/nodes).
type Node struct {
	// Name is the node's name, e.g. worker@10.0.0.7.
	Name string `json:"name"`
	// Version is the edgefaas version the worker runs.
	Version string `json:"version"`
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
	// ClockSkewMS is the worker's clock minus the core's when its last
	// report arrived, in milliseconds (0: unknown).
	ClockSkewMS int64 `json:"clock_skew_ms"`
}

// ListNodes returns the workers connected to the core.
func (c *Client) ListNodes(ctx context.Context) ([]Node, error) {
	return do[[]Node](ctx, c, http.MethodGet, "/v1/nodes", nil)
}

// GroupMember is one core of a core group (GET /v1/admin/group).
type GroupMember struct {
	ID           string `json:"id"`
	Address      string `json:"address"`
	Voter        bool   `json:"voter"`
	Self         bool   `json:"self"`
	Role         string `json:"role"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
	Lag          uint64 `json:"lag"`
	// SnapshotIndex is the member's newest snapshot; Restores counts the
	// snapshots it restored since it started (one taken from the leader
	// when it joined or fell behind the leader's kept log).
	SnapshotIndex uint64 `json:"snapshot_index"`
	Restores      int64  `json:"restores"`
	Leader        string `json:"leader"`
	Error         string `json:"error,omitempty"`
}

// GroupMembers returns the members of the core's group, none for a
// single core (admin token).
func (c *Client) GroupMembers(ctx context.Context) ([]GroupMember, error) {
	v, err := do[struct {
		Members []GroupMember `json:"members"`
	}](ctx, c, http.MethodGet, "/v1/admin/group", nil)
	return v.Members, err
}

// RemoveGroupMember removes the member id (its --group-addr) from the
// core's group (admin token).
func (c *Client) RemoveGroupMember(ctx context.Context, id string) error {
	return c.callJSON(ctx, http.MethodDelete, pathOf("v1", "admin", "group", id), nil, nil)
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
	return do[JoinToken](ctx, c, http.MethodPost, "/v1/admin/join-tokens", body)
}

// RevokeNode makes the core refuse a token-joined node's certificate from
// now on and drop its link (admin token).
func (c *Client) RevokeNode(ctx context.Context, name string) error {
	return c.callJSON(ctx, http.MethodPost, pathOf("v1", "admin", "nodes", name, "revoke"), nil, nil)
}

// RotateNode issues a token-joined node a new certificate over its live
// link and returns its serial (admin token).
func (c *Client) RotateNode(ctx context.Context, name string) (string, error) {
	out, err := do[struct {
		Serial string `json:"serial"`
	}](ctx, c, http.MethodPost, pathOf("v1", "admin", "nodes", name, "rotate"), nil)
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
	return do[[]NodeCert](ctx, c, http.MethodGet, "/v1/admin/node-certificates", nil)
}

// CoreVersion is the core's build (GET /v1/version).
type CoreVersion struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

// Version returns the core's version and build (any valid token).
func (c *Client) Version(ctx context.Context) (CoreVersion, error) {
	return do[CoreVersion](ctx, c, http.MethodGet, "/v1/version", nil)
}

// AdminStatus is the core's state an operator checks (GET
// /v1/admin/status, admin token).
type AdminStatus struct {
	// DiskFreeBytes and DiskTotalBytes are of the file system holding the
	// core's database (-1: unknown).
	DiskFreeBytes  int64 `json:"disk_free_bytes"`
	DiskTotalBytes int64 `json:"disk_total_bytes"`
	// QueueLength counts the asynchronous calls queued or running, and
	// QueueOldestAgeSeconds is how long the oldest has waited (-1: the
	// core runs no asynchronous queue).
	QueueLength           int     `json:"queue_length"`
	QueueOldestAgeSeconds float64 `json:"queue_oldest_age_seconds"`
	// NodeJoinMode is how workers may join: "any" (a join token or the
	// cluster cookie), "token", "operator-ca" or "cookie".
	NodeJoinMode string `json:"node_join_mode"`
	// Time is the core's clock when it answered.
	Time time.Time `json:"time"`
}

// AdminStatus returns the core's disk, queue and node-join state (admin
// token).
func (c *Client) AdminStatus(ctx context.Context) (AdminStatus, error) {
	return do[AdminStatus](ctx, c, http.MethodGet, "/v1/admin/status", nil)
}
