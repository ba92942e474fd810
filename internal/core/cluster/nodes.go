package cluster

import (
	"errors"
	"time"
)

// Nodes is implemented by clusters that can list their workers and attach
// one by address (`edgefaas node list|connect`).
type Nodes interface {
	NodeList() []NodeInfo
	// Connect attaches a worker by node address, "NAME@HOST:PORT".
	Connect(addr string) error
}

// JoinPolicy is implemented by clusters that say how workers may join
// (GET /v1/admin/status): JoinMode is "any" (a core-issued certificate or
// the cookie), "token" (only a core-issued certificate, from a join
// token), "operator-ca" (certificates from the operator's CA) or "cookie"
// (the cookie alone: a core without storage for its own CA).
type JoinPolicy interface {
	JoinMode() string
}

// NodeInfo is a worker as GET /v1/nodes shows it.
type NodeInfo struct {
	Name string `json:"name"`
	// Version is the edgefaas version the worker runs (internal/version).
	Version     string   `json:"version"`
	Arch        string   `json:"arch"`
	OS          string   `json:"os"`
	Tags        []string `json:"tags"`
	TotalMemory int      `json:"total_memory"`
	FreeMemory  int      `json:"free_memory"`
	// MemoryBudget is the worker node's whole budget (--memory, else its
	// cgroup limit, else a share of MemAvailable); MemoryInUse its resident
	// set; MemoryReserved what its guests and compiled code hold. Bytes.
	MemoryBudget   int       `json:"memory_budget"`
	MemoryInUse    int       `json:"memory_in_use"`
	MemoryReserved int       `json:"memory_reserved"`
	Load           float64   `json:"load"` // (running + queued) / concurrency limit
	Running        int       `json:"running"`
	Queued         int       `json:"queued"`
	MaxRunning     int       `json:"max_running"`
	Functions      []string  `json:"functions"`   // code hashes compiled there; empty for non-admins
	Invocations    int       `json:"invocations"` // started there since the worker started
	LastReport     time.Time `json:"last_report"`
	// ClockSkewMS is the worker's clock minus the core's when its last
	// report arrived, milliseconds (0: unknown).
	ClockSkewMS int64 `json:"clock_skew_ms"`
}

// NodeAuthority is implemented by a cluster whose core issues node
// certificates from its own CA: workers join with a one-time
// token, and single workers are rotated or revoked by an admin.
type NodeAuthority interface {
	// Issuing reports whether this core issues certificates at all (not
	// with an operator CA): join tokens are refused otherwise.
	Issuing() bool
	// Enroll spends a join token and signs csr (DER, PKCS #10) for node
	// name; errors wrap ErrJoinRefused when the token or request is refused.
	Enroll(token, name string, csr []byte) (Enrollment, error)
	// RevokeNode refuses name's certificate from now on and drops its link.
	RevokeNode(name string) error
	// RotateNode issues name a new certificate over its live link; the old
	// one is refused once the node connected with the new one.
	RotateNode(name string) (serial string, err error)
}

// Enrollment is what a worker gets for a valid join token.
type Enrollment struct {
	// Certificate is the worker's certificate (PEM), naming it.
	Certificate string `json:"certificate"`
	// CA holds the certificates (PEM) the worker must trust for its cores.
	CA string `json:"ca"`
	// Cookie is the cluster's ergo cookie (the link is authenticated by
	// the certificates; ergo's handshake still needs it).
	Cookie string `json:"cookie"`
	// Serial is the certificate's serial number, hex.
	Serial string `json:"serial"`
}

// Errors a NodeAuthority wraps.
var (
	// ErrJoinRefused: the token is unknown, used or expired, or the request is malformed.
	ErrJoinRefused = errors.New("join refused")
	// ErrNodeUnknown: no token-joined node has that name.
	ErrNodeUnknown = errors.New("no token-joined node has that name")
	// ErrNoAuthority: the core does not issue certificates (an operator CA, or no cluster).
	ErrNoAuthority = errors.New("this core does not issue node certificates (it runs with an operator CA or without a cluster)")
)
