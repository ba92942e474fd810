package egress

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
)

// TestDialNamedHost: a trigger's broker needs its host allowed by the
// operator (AllowedHosts or Grantable) and, on an internal address, the
// network opened.
func TestDialNamedHost(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	ctx := context.Background()
	cases := []struct {
		name string
		cfg  Config
		want error
	}{
		{"nothing allowed", Config{}, ErrHostNotAllowed},
		{"host allowed, network closed", Config{AllowedHosts: []string{"127.0.0.1"}}, ErrAddressNotAllowed},
		{"grantable and network", Config{Grantable: []string{"*"}, AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, nil},
		{"host and network", Config{AllowedHosts: []string{"127.0.0.1"}, AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, nil},
		{"other port", Config{AllowedHosts: []string{"127.0.0.1:1"}, AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}, ErrHostNotAllowed},
	}
	for _, tc := range cases {
		c, err := New(tc.cfg).DialNamedHost(ctx, "127.0.0.1", port)
		if c != nil {
			c.Close()
		}
		if (tc.want == nil) != (err == nil) || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}
