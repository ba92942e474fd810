package egress

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/edgefaas/edgefaas/internal/outbound"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// counting is a loopback web server that counts the requests reaching it.
func counting(t *testing.T) (url, host string, hits *atomic.Int64) {
	t.Helper()
	hits = new(atomic.Int64)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.Write([]byte("ok"))
	}))
	t.Cleanup(s.Close)
	return s.URL, strings.TrimPrefix(s.URL, "http://"), hits
}

func get(c *Client, url string, fnHosts ...string) error {
	return c.Do(context.Background(), &outbound.Request{Function: "m/f", Method: "GET", URL: url, AllowedHosts: fnHosts}).Err
}

// TestOperatorBoundsGrants: a function's allowed_hosts ["*"] used to be
// OR'ed with the operator's list, so any tenant could reach any host the
// address rule let through. Now a function's grant counts only within
// Config.Grantable.
func TestOperatorBoundsGrants(t *testing.T) {
	url, host, hits := counting(t)
	_, port, _ := net.SplitHostPort(host)
	other, otherHost, otherHits := counting(t)

	cases := []struct {
		name    string
		cfg     Config
		url     string
		fnHosts []string
		want    error // nil: reached
	}{
		{"function '*' without operator grant", Config{AllowedNetworks: loopback}, url, []string{"*"}, ErrHostNotAllowed},
		{"function names the host, operator grants nothing", Config{AllowedNetworks: loopback}, url, []string{host}, ErrHostNotAllowed},
		{"function '*' bounded by the operator's port", Config{AllowedNetworks: loopback, Grantable: []string{"127.0.0.1:" + port}}, other, []string{"*"}, ErrHostNotAllowed},
		{"function '*' within the operator's bound", Config{AllowedNetworks: loopback, Grantable: []string{"127.0.0.1:" + port}}, url, []string{"*"}, nil},
		{"operator grants, function does not ask", Config{AllowedNetworks: loopback, Grantable: []string{"*"}}, url, nil, ErrHostNotAllowed},
		{"operator's list reaches every function", Config{AllowedNetworks: loopback, AllowedHosts: []string{host}}, url, nil, nil},
		{"grant '*' still refuses internal addresses", Config{Grantable: []string{"*"}}, url, []string{"*"}, ErrAddressNotAllowed},
	}
	var reached int64
	for _, tc := range cases {
		err := get(New(tc.cfg), tc.url, tc.fnHosts...)
		switch {
		case tc.want == nil && err != nil:
			t.Errorf("%s: %v, want reached", tc.name, err)
		case tc.want != nil && !errors.Is(err, tc.want):
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		case tc.want == nil:
			reached++
		}
	}
	if n := hits.Load() + otherHits.Load(); n != reached {
		t.Fatalf("servers hit %d times, %d requests were allowed", n, reached)
	}
	_ = otherHost
}

// TestTransitionAddressesAreInternal: NAT64, 6to4 and Teredo embed or
// relay to IPv4 addresses; 240/4 and 198.18/15 are not public either.
func TestTransitionAddressesAreInternal(t *testing.T) {
	for a, want := range map[string]bool{
		"64:ff9b::7f00:1":      true, // NAT64 of 127.0.0.1
		"64:ff9b::a00:1":       true, // NAT64 of 10.0.0.1
		"64:ff9b:1::1":         true,
		"2002:7f00:1::1":       true, // 6to4 of 127.0.0.1
		"2001:0:4136:e378::1":  true, // Teredo
		"240.0.0.1":            true,
		"255.255.255.255":      true,
		"198.18.0.1":           true,
		"198.19.255.254":       true,
		"::ffff:198.18.0.1":    true,
		"8.8.8.8":              false,
		"198.20.0.1":           false,
		"2606:4700:4700::1111": false,
		"2001:db8::1":          false, // documentation, outside Teredo's /32
		"2001:4860:4860::8888": false,
	} {
		if got := internal(netip.MustParseAddr(a)); got != want {
			t.Errorf("internal(%s) = %v, want %v", a, got, want)
		}
	}
	// And at connect time, with every host allowed: refused before dialing.
	c := New(Config{AllowedHosts: []string{"*"}})
	for _, addr := range []string{"[64:ff9b::7f00:1]:80", "[2002:7f00:1::1]:80", "198.18.0.1:80", "240.0.0.1:80"} {
		resp := c.Do(context.Background(), &outbound.Request{Method: outbound.MethodTCP, URL: "tcp://" + addr, Body: []byte("x\n")})
		if !errors.Is(resp.Err, ErrAddressNotAllowed) {
			t.Errorf("tcp %s: %v, want ErrAddressNotAllowed", addr, resp.Err)
		}
	}
}

// TestAllowedEndpointsOpenOnePort: an opened address:port does not open
// its neighbours (in dev mode: the API, pprof and node ports).
func TestAllowedEndpointsOpenOnePort(t *testing.T) {
	url, host, hits := counting(t)
	other, _, otherHits := counting(t)
	c := New(Config{AllowedHosts: []string{"*"}, AllowedEndpoints: []netip.AddrPort{netip.MustParseAddrPort(host)}})
	if err := get(c, url); err != nil {
		t.Fatalf("opened endpoint: %v", err)
	}
	if err := get(c, other); !errors.Is(err, ErrAddressNotAllowed) {
		t.Fatalf("another port on the same address: %v, want ErrAddressNotAllowed", err)
	}
	if hits.Load() != 1 || otherHits.Load() != 0 {
		t.Fatalf("hits %d and %d, want 1 and 0", hits.Load(), otherHits.Load())
	}
}

// TestIntersect: a pattern of Intersect(a, b) matches a host:port exactly
// when a pattern of a and a pattern of b both do (checked over a grid).
func TestIntersect(t *testing.T) {
	pats := []string{"*", "*:443", "*.example.com", "*.api.example.com:443", "api.example.com", "api.example.com:80",
		"example.com", "other.org", "*.org", "127.0.0.1:8080", "[::1]:80", "API.Example.com:443"}
	hosts := []struct{ h, p string }{{"api.example.com", "443"}, {"api.example.com", "80"}, {"x.api.example.com", "443"},
		{"example.com", "443"}, {"other.org", "80"}, {"a.b.org", "22"}, {"127.0.0.1", "8080"}, {"::1", "80"}, {"evil.com", "443"}}
	for _, x := range pats {
		for _, y := range pats {
			got := Intersect([]string{x}, []string{y})
			for _, hp := range hosts {
				want := matchAny([]string{x}, hp.h, hp.p) && matchAny([]string{y}, hp.h, hp.p)
				if have := matchAny(got, hp.h, hp.p); have != want {
					t.Errorf("Intersect(%q, %q) = %q: %s:%s matched %v, want %v", x, y, got, hp.h, hp.p, have, want)
				}
			}
		}
	}
	if got := Intersect([]string{"*"}, nil); len(got) != 0 {
		t.Errorf("an empty bound permits %q", got)
	}
}

// BenchmarkBound: the per-call cost the core adds to an invocation whose
// function grants itself hosts (lookup from a map here; the store's is a
// cached point read, storage.BenchmarkSubjectEgress).
func BenchmarkBound(b *testing.B) {
	bound := []string{"api.example.com:443", "*.partner.net", "hooks.example.org"}
	lookup := func(string) ([]string, bool, error) { return bound, true, nil }
	grants := []string{"*", "api.example.com", "x.partner.net:443"}
	for b.Loop() {
		if _, err := Bound(lookup, "alice", grants); err != nil {
			b.Fatal(err)
		}
	}
}
