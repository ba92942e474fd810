package wasm

import (
	"context"
	"net/http"
)

// Outbound performs a guest's outbound HTTP request. On a worker it is the
// HTTP-client actor: the host function hands it the request and blocks only
// its own goroutine until the answer comes back. The implementation applies
// the policy (allow-list, timeout, response size) and must always answer.
type Outbound interface {
	Do(ctx context.Context, req *OutboundRequest) *OutboundResponse
}

// MethodTCP marks an OutboundRequest that is a TCP exchange rather than an
// HTTP request: URL is "tcp://host:port", Body is sent and the reply (up to
// a newline or the peer closing) is the response body.
const MethodTCP = "TCP"

// OutboundRequest is one guest HTTP request with the identity and grants of
// the function that made it.
type OutboundRequest struct {
	Function     string   // "module/name", for policy, logs and metrics
	AllowedHosts []string // the function's allow-list, from its metadata
	Method       string
	URL          string
	Header       http.Header
	Body         []byte
}

// OutboundResponse is the answer. Err set means no response was obtained
// (denied by policy, unreachable, too large...); the guest sees status 0.
type OutboundResponse struct {
	Status int
	Body   []byte
	Err    error
}

type denyAll struct{}

func (denyAll) Do(context.Context, *OutboundRequest) *OutboundResponse {
	return &OutboundResponse{Err: errOutboundDisabled}
}
