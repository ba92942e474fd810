package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
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

// isDenied reports whether err is a refusal by the policy.
func isDenied(err error) bool {
	return errors.Is(err, ErrHostNotAllowed) || errors.Is(err, ErrAddressNotAllowed)
}
