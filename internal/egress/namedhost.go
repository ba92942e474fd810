package egress

import (
	"context"
	"fmt"
	"net"
	"strconv"
)

// CheckNamedHost says whether a destination that a function names itself
// (a trigger's MQTT broker) may be reached: the host must be on the
// operator's AllowedHosts, or within what functions may grant themselves
// (Grantable). Internal addresses are checked again at connect time.
func (c *Client) CheckNamedHost(host string, port int) error {
	p := strconv.Itoa(port)
	if !c.hostAllowed(host, p, []string{net.JoinHostPort(host, p)}) {
		return fmt.Errorf("%w: %s (the operator allows hosts with --allow-host or --egress-allow)", ErrHostNotAllowed, net.JoinHostPort(host, p))
	}
	return nil
}

// DialNamedHost opens a TCP connection to a destination a function named
// (see CheckNamedHost), refusing internal addresses the operator did not
// open (AllowedNetworks, AllowedEndpoints), also when a DNS name resolves
// to one.
func (c *Client) DialNamedHost(ctx context.Context, host string, port int) (net.Conn, error) {
	if err := c.CheckNamedHost(host, port); err != nil {
		return nil, err
	}
	return c.dialer.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
}
