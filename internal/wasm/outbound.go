package wasm

import (
	"context"

	"github.com/edgefaas/edgefaas/internal/outbound"
)

// Outbound performs a guest's outbound HTTP request. On a worker it is the
// HTTP-client actor: the host function hands it the request and blocks only
// its own goroutine until the answer comes back. The implementation applies
// the policy (allow-list, timeout, response size) and must always answer.
type Outbound interface {
	Do(ctx context.Context, req *outbound.Request) *outbound.Response
}

type denyAll struct{}

func (denyAll) Do(context.Context, *outbound.Request) *outbound.Response {
	return &outbound.Response{Err: errOutboundDisabled}
}
