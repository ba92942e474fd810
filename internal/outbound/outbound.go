// Package outbound holds a function's outbound request and its answer, the
// values the runtime (internal/wasm) hands to whatever performs them (the
// egress policy on a worker, the core's sinks and callbacks reuse it). It
// is a leaf: the runtime and the egress policy both use it without
// importing each other.
package outbound

import "net/http"

// MethodTCP marks a Request that is a TCP exchange rather than an HTTP
// request: URL is "tcp://host:port", Body is sent and the reply (up to a
// newline or the peer closing) is the response body.
const MethodTCP = "TCP"

// Request is one guest HTTP request with the identity and grants of the
// function that made it.
type Request struct {
	Function     string   // "module/name", for policy, logs and metrics
	AllowedHosts []string // the function's allow-list, from its metadata
	Method       string
	URL          string
	Header       http.Header
	Body         []byte
}

// Response is the answer. Err set means no response was obtained (denied
// by policy, unreachable, too large...); the guest sees status 0.
type Response struct {
	Status int
	Body   []byte
	Err    error
}
