// Package egress is the policy for functions' outbound network access:
// which hosts a function may reach, which addresses are never reachable,
// how long a request may take and how much it may bring back.
//
// The operator bounds what a tenant can grant. A function reaches a host
// if the host is on the operator's list every function may reach
// (Config.AllowedHosts), or if it is on the function's own allow-list (its
// metadata) AND within what the operator lets functions grant themselves
// (Config.Grantable; none by default). A function's "*" therefore means
// "whatever the operator permits", never more. Whatever the name, the
// address it resolves to is checked at connect time: loopback, private,
// link-local, multicast, unspecified and transition (NAT64, 6to4, Teredo)
// addresses are refused unless the operator opened that network or that
// address and port, which also covers redirects and DNS names that resolve
// to internal addresses.
package egress

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgefaas/edgefaas/internal/outbound"
)

// Errors a request can be refused with, wrapped with detail.
var (
	// ErrHostNotAllowed: the host is on neither the function's nor the operator's allow-list.
	ErrHostNotAllowed = errors.New("host not allowed for this function")
	// ErrAddressNotAllowed: the host resolved to an internal address the operator did not open.
	ErrAddressNotAllowed = errors.New("address not allowed")
	// ErrResponseTooLarge: the response body exceeds Config.MaxResponseBytes.
	ErrResponseTooLarge = errors.New("response too large")
	// ErrBadRequest: the guest's request is malformed (URL, scheme, method).
	ErrBadRequest = errors.New("bad outbound request")
)

// Config is the operator's policy.
type Config struct {
	// AllowedHosts every function may reach: "host", "host:port",
	// "*.domain" or "*" (any host that resolves to a public address).
	AllowedHosts []string
	// Grantable bounds the functions' own allow-lists: an entry of a
	// function's allowed_hosts takes effect only for hosts and ports that
	// also match one of these patterns (same syntax). Empty (the default):
	// functions reach only AllowedHosts, whatever their metadata says;
	// "*" restores the behaviour before operator bounds (a function may grant
	// itself any public host).
	Grantable []string
	// AllowedNetworks are internal networks functions may reach (none by
	// default), e.g. 127.0.0.0/8 for a test server on loopback.
	AllowedNetworks []netip.Prefix
	// AllowedEndpoints are single internal address:port pairs functions
	// may reach, narrower than a network: `edgefaas dev` opens only the
	// ports it is told to, never the API, pprof or node port beside them.
	AllowedEndpoints []netip.AddrPort
	// Timeout per request (default 10 s), within the invocation's own deadline.
	Timeout time.Duration
	// MaxResponseBytes per response (default 4 MiB).
	MaxResponseBytes int64
	// MaxRedirects followed (default 5); each hop is checked again.
	MaxRedirects int
}

// Client performs outbound requests under a Config. It implements
// the runtime's Outbound (internal/wasm) and prometheus.Collector.
type Client struct {
	cfg      Config
	dialer   *net.Dialer
	http     *http.Client
	requests *prometheus.CounterVec
}

// New returns a Client for cfg.
func New(cfg Config) *Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.MaxResponseBytes <= 0 {
		cfg.MaxResponseBytes = 4 << 20
	}
	if cfg.MaxRedirects <= 0 {
		cfg.MaxRedirects = 5
	}
	c := &Client{cfg: cfg}
	c.dialer = &net.Dialer{Timeout: cfg.Timeout, Control: c.checkAddress}
	tr := &http.Transport{
		DialContext:         c.dialer.DialContext,
		Proxy:               nil, // a proxy would hide the real destination from the address check
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: cfg.Timeout,
	}
	c.http = &http.Client{Transport: tr, Timeout: cfg.Timeout}
	c.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "edgefaas_outbound_requests_total",
		Help: "Outbound requests made by functions, by protocol and result (ok, denied, error, too_large).",
	}, []string{"protocol", "result"})
	return c
}

// Describe implements prometheus.Collector.
func (c *Client) Describe(ch chan<- *prometheus.Desc) { c.requests.Describe(ch) }

// Collect implements prometheus.Collector.
func (c *Client) Collect(ch chan<- prometheus.Metric) { c.requests.Collect(ch) }

// Count returns how many requests ended with result for protocol ("http"
// or "tcp"), for tests and reports.
func (c *Client) Count(protocol, result string) int {
	return int(counterValue(c.requests.WithLabelValues(protocol, result)))
}

// internal reports whether an address is one that functions must not
// reach unless the operator opened its network.
func internal(a netip.Addr) bool {
	a = a.Unmap()
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return true
	}
	for _, p := range internalNets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// internalNets are the ranges netip's predicates do not cover. The IPv6
// transition prefixes embed (or relay to) an IPv4 address, so a function
// could reach 127.0.0.1 or 10.0.0.1 through a NAT64 gateway or a 6to4 /
// Teredo relay: all of them count as internal.
var internalNets = []netip.Prefix{
	netip.MustParsePrefix("100.64.0.0/10"),  // CGNAT
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network"
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, incl. 255.255.255.255
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64, well-known prefix
	netip.MustParsePrefix("64:ff9b:1::/48"), // NAT64, local-use prefix
	netip.MustParsePrefix("2002::/16"),      // 6to4
	netip.MustParsePrefix("2001::/32"),      // Teredo
}

// checkAddress runs after DNS resolution, just before connecting: it is
// where names and redirects that lead to internal addresses are caught.
func (c *Client) checkAddress(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrAddressNotAllowed, address)
	}
	if !internal(ap.Addr()) {
		return nil
	}
	for _, p := range c.cfg.AllowedNetworks {
		if p.Contains(ap.Addr().Unmap()) {
			return nil
		}
	}
	for _, e := range c.cfg.AllowedEndpoints {
		if e.Addr().Unmap() == ap.Addr().Unmap() && e.Port() == ap.Port() {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is an internal address", ErrAddressNotAllowed, ap.Addr())
}

// hostAllowed matches host and port against the operator's list, or
// against the function's list within what the operator lets it grant.
func (c *Client) hostAllowed(host, port string, fnHosts []string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return matchAny(c.cfg.AllowedHosts, host, port) ||
		(matchAny(fnHosts, host, port) && matchAny(c.cfg.Grantable, host, port))
}

func matchAny(list []string, host, port string) bool {
	for _, pat := range list {
		if matchHost(strings.ToLower(pat), host, port) {
			return true
		}
	}
	return false
}

func matchHost(pat, host, port string) bool {
	if pat == "*" {
		return true
	}
	ph, pp, err := net.SplitHostPort(pat)
	if err != nil {
		ph, pp = strings.Trim(pat, "[]"), ""
	}
	if pp != "" && pp != port {
		return false
	}
	if ph == "*" { // "*:443": any host on that port
		return true
	}
	if rest, ok := strings.CutPrefix(ph, "*."); ok {
		return strings.HasSuffix(host, "."+rest)
	}
	return ph == host
}

// Do performs one request and always answers. It implements the runtime's Outbound.
func (c *Client) Do(ctx context.Context, req *outbound.Request) *outbound.Response {
	protocol := "http"
	var resp *outbound.Response
	if req.Method == outbound.MethodTCP {
		protocol = "tcp"
		resp = c.tcp(ctx, req)
	} else {
		resp = c.do(ctx, req, true)
	}
	result := "ok"
	switch {
	case resp.Err == nil:
	case errors.Is(resp.Err, ErrHostNotAllowed), errors.Is(resp.Err, ErrAddressNotAllowed):
		result = "denied"
	case errors.Is(resp.Err, ErrResponseTooLarge):
		result = "too_large"
	default:
		result = "error"
	}
	c.requests.WithLabelValues(protocol, result).Inc()
	return resp
}

func (c *Client) do(ctx context.Context, req *outbound.Request, follow bool) *outbound.Response {
	u, err := url.Parse(req.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &outbound.Response{Err: fmt.Errorf("%w: %q is not an http(s) URL", ErrBadRequest, req.URL)}
	}
	if !c.hostAllowed(u.Hostname(), portOf(u), req.AllowedHosts) {
		return &outbound.Response{Err: fmt.Errorf("%w: %s", ErrHostNotAllowed, u.Host)}
	}
	hreq, err := http.NewRequestWithContext(ctx, req.Method, req.URL, bytes.NewReader(req.Body))
	if err != nil {
		return &outbound.Response{Err: fmt.Errorf("%w: %v", ErrBadRequest, err)}
	}
	for k, vs := range req.Header {
		hreq.Header[http.CanonicalHeaderKey(k)] = vs
	}
	client := *c.http
	hops := 0
	client.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
		if !follow {
			return http.ErrUseLastResponse
		}
		if hops++; hops > c.cfg.MaxRedirects {
			return fmt.Errorf("stopped after %d redirects", c.cfg.MaxRedirects)
		}
		if !c.hostAllowed(r.URL.Hostname(), portOf(r.URL), req.AllowedHosts) {
			return fmt.Errorf("%w: redirect to %s", ErrHostNotAllowed, r.URL.Host)
		}
		return nil
	}
	hresp, err := client.Do(hreq)
	if err != nil {
		return &outbound.Response{Err: fmt.Errorf("%s %s: %w", req.Method, u.Redacted(), unwrapURL(err))}
	}
	defer hresp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(hresp.Body, c.cfg.MaxResponseBytes+1))
	if err != nil {
		return &outbound.Response{Err: fmt.Errorf("%s %s: read body: %w", req.Method, u.Redacted(), err)}
	}
	if int64(len(body)) > c.cfg.MaxResponseBytes {
		return &outbound.Response{Err: fmt.Errorf("%w: more than %d bytes from %s", ErrResponseTooLarge, c.cfg.MaxResponseBytes, u.Host)}
	}
	return &outbound.Response{Status: hresp.StatusCode, Body: body}
}

// unwrapURL keeps the policy error visible through net/http's wrapping.
func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// tcp sends the body to tcp://host:port and reads one reply line.
func (c *Client) tcp(ctx context.Context, req *outbound.Request) *outbound.Response {
	addr := strings.TrimPrefix(req.URL, "tcp://")
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return &outbound.Response{Err: fmt.Errorf("%w: %q is not host:port", ErrBadRequest, addr)}
	}
	if !c.hostAllowed(host, port, req.AllowedHosts) {
		return &outbound.Response{Err: fmt.Errorf("%w: %s", ErrHostNotAllowed, addr)}
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	conn, err := c.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return &outbound.Response{Err: fmt.Errorf("connect %s: %w", addr, err)}
	}
	defer conn.Close()
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
	}
	if _, err := conn.Write(req.Body); err != nil {
		return &outbound.Response{Err: fmt.Errorf("send to %s: %w", addr, err)}
	}
	r := bufio.NewReader(io.LimitReader(conn, c.cfg.MaxResponseBytes+1))
	line, err := r.ReadBytes('\n')
	if err != nil && err != io.EOF {
		return &outbound.Response{Err: fmt.Errorf("reply from %s: %w", addr, err)}
	}
	if int64(len(line)) > c.cfg.MaxResponseBytes {
		return &outbound.Response{Err: fmt.Errorf("%w: more than %d bytes from %s", ErrResponseTooLarge, c.cfg.MaxResponseBytes, addr)}
	}
	return &outbound.Response{Status: 200, Body: bytes.TrimSuffix(line, []byte("\n"))}
}
