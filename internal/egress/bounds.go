package egress

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Per-subject bounds. The worker's Config.Grantable (--egress-allow) is one
// bound for every tenant; the core also keeps, per subject, the hosts the
// operator permits that subject (storage.Store.SubjectEgress). Because the
// pattern language (host, host:port, *.domain, *, with or without a port)
// is closed under intersection, the core intersects a function's
// allowed_hosts with its owner's bound before the call leaves for a worker
// (Intersect), and the worker applies its own Grantable and the
// internal-address refusal unchanged: a worker needs no per-subject state.

// Lookup returns the operator's bound for subject, and whether one is set
// (false: no per-subject bound, the node-wide policy alone applies).
// *storage.Store's SubjectEgress has this shape.
type Lookup func(subject string) (hosts []string, set bool, err error)

// Bound applies subject's bound (from lookup) to grants, a function's
// allowed_hosts: unchanged when the subject has no bound, else
// Intersect(grants, bound). Call it for every request made on a subject's
// behalf, per call, so an operator's change applies without a restart.
func Bound(lookup Lookup, subject string, grants []string) ([]string, error) {
	if lookup == nil {
		return grants, nil
	}
	bound, set, err := lookup(subject)
	if err != nil {
		return nil, fmt.Errorf("egress bound of subject %q: %w", subject, err)
	}
	if !set {
		return grants, nil
	}
	return Intersect(grants, bound), nil
}

// Permits reports (as an error wrapping ErrHostNotAllowed) whether a
// request to rawURL (http, https or tcp://host:port) on subject's behalf
// is within the subject's bound. No bound set: permitted. It checks only
// the bound; the caller's own egress.Client still applies its allow-list
// and the internal-address refusal. For senders that are not functions:
// completion callbacks, sinks, triggers.
func Permits(lookup Lookup, subject, rawURL string) error {
	if lookup == nil {
		return nil
	}
	bound, set, err := lookup(subject)
	if err != nil {
		return fmt.Errorf("egress bound of subject %q: %w", subject, err)
	}
	if !set {
		return nil
	}
	host, port, err := urlHostPort(rawURL)
	if err != nil {
		return err
	}
	if !matchAny(bound, strings.ToLower(strings.TrimSuffix(host, ".")), port) {
		return fmt.Errorf("%w: %s is outside the operator's bound for subject %q", ErrHostNotAllowed, net.JoinHostPort(host, port), subject)
	}
	return nil
}

func urlHostPort(raw string) (string, string, error) {
	if rest, ok := strings.CutPrefix(raw, "tcp://"); ok {
		h, p, err := net.SplitHostPort(rest)
		if err != nil {
			return "", "", fmt.Errorf("%w: %q is not host:port", ErrBadRequest, rest)
		}
		return h, p, nil
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", "", fmt.Errorf("%w: %q is not a URL", ErrBadRequest, raw)
	}
	return u.Hostname(), portOf(u), nil
}

// Intersect returns the patterns that match exactly the hosts and ports
// matched by some pattern of a and by some pattern of b. Both use the
// allow-list syntax (host, host:port, *.domain, *.domain:port, *, *:port).
func Intersect(a, b []string) []string {
	out := []string{}
	seen := map[string]bool{}
	for _, x := range a {
		for _, y := range b {
			if p, ok := intersect1(x, y); ok && !seen[p] {
				seen[p] = true
				out = append(out, p)
			}
		}
	}
	return out
}

func splitPattern(p string) (host, port string) {
	p = strings.ToLower(strings.TrimSpace(p))
	if h, pp, err := net.SplitHostPort(p); err == nil {
		return h, pp
	}
	return strings.Trim(p, "[]"), ""
}

func intersect1(x, y string) (string, bool) {
	xh, xp := splitPattern(x)
	yh, yp := splitPattern(y)
	port := xp
	switch {
	case xp == "":
		port = yp
	case yp != "" && yp != xp:
		return "", false
	}
	host, ok := intersectHost(xh, yh)
	if !ok {
		return "", false
	}
	if port == "" {
		return host, true
	}
	return net.JoinHostPort(host, port), true
}

// intersectHost: "*" is any host, "*.d" any strict subdomain of d, else one
// host (matchHost's meaning).
func intersectHost(x, y string) (string, bool) {
	if x == "*" {
		return y, true
	}
	if y == "*" {
		return x, true
	}
	xd, xw := strings.CutPrefix(x, "*.")
	yd, yw := strings.CutPrefix(y, "*.")
	switch {
	case xw && yw:
		if xd == yd || strings.HasSuffix(xd, "."+yd) {
			return x, true
		}
		if strings.HasSuffix(yd, "."+xd) {
			return y, true
		}
		return "", false
	case xw:
		return y, strings.HasSuffix(y, "."+xd)
	case yw:
		return x, strings.HasSuffix(x, "."+yd)
	default:
		return x, x == y
	}
}
