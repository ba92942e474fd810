package egress

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/edgefaas/edgefaas/internal/outbound"
)

// DialContext opens a TCP connection to address (host:port) under the
// policy, for protocols the Client does not speak itself (the core's MQTT
// sinks): the host must be allowed (granted is the caller's own
// allow-list, effective within Config.Grantable, as a function's is) and
// the address it resolves to is checked at connect time like any other.
// Counted as protocol "tcp".
func (c *Client) DialContext(ctx context.Context, address string, granted []string) (net.Conn, error) {
	conn, err := c.dial(ctx, address, granted)
	result := "ok"
	switch {
	case err == nil:
	case isDenied(err):
		result = "denied"
	default:
		result = "error"
	}
	c.requests.WithLabelValues("tcp", result).Inc()
	return conn, err
}

func (c *Client) dial(ctx context.Context, address string, granted []string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("%w: %q is not host:port", ErrBadRequest, address)
	}
	if !c.hostAllowed(host, port, granted) {
		return nil, fmt.Errorf("%w: %s", ErrHostNotAllowed, address)
	}
	conn, err := c.dialer.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", address, err)
	}
	return conn, nil
}

// DoNoRedirect is Do without following redirects: a 3xx is the answer.
// The core's sinks use it, since following a 301 or 302 would turn their
// POST into a GET without the result.
func (c *Client) DoNoRedirect(ctx context.Context, req *outbound.Request) *outbound.Response {
	resp := c.do(ctx, req, false)
	result := "ok"
	switch {
	case resp.Err == nil:
	case isDenied(resp.Err):
		result = "denied"
	case errors.Is(resp.Err, ErrResponseTooLarge):
		result = "too_large"
	default:
		result = "error"
	}
	c.requests.WithLabelValues("http", result).Inc()
	return resp
}

// isDenied reports whether err is a refusal by the policy.
func isDenied(err error) bool {
	return errors.Is(err, ErrHostNotAllowed) || errors.Is(err, ErrAddressNotAllowed)
}
