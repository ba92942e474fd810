package api

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// refusalHold is the Retry-After of a body's refusal, and how long a
// subject's refusal that follows another within it waits before it is
// answered.
const refusalHold = time.Second

// refusalPace paces each subject's refusals: a refusal is cheap, so a
// client that ignores Retry-After and sends its next body at once is
// refused as fast as the core can answer it, each time on a new
// connection (a refusal closes it) after sending part of its body, and
// the work of those refusals (connections, token checks, lookups, the
// kernel's copies of bodies never read) starves the other tenants. A
// subject's first refusal is answered at once; one that comes within
// refusalHold of its last is held for refusalHold before it is answered,
// so a subject's client that does not wait is refused at most once a
// refusalHold per connection, and the subject's refusals cost at most its
// connections' worth a refusalHold. A held refusal is a parked goroutine
// on an open connection, bounded by the listener's connection bound.
// Subjects, not addresses: behind one NAT every client of an edge LAN has
// the same address, and a token is what a tenant is.
type refusalPace struct {
	held   prometheus.Counter // refusals held; nil: not counted
	mu     sync.Mutex
	last   map[string]time.Time // the subject's last refusal, within refusalHold
	pruned time.Time
}

// due records a refusal of who at now and says how long it must wait.
func (p *refusalPace) due(who string, now time.Time) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		p.last = map[string]time.Time{}
	}
	if now.Sub(p.pruned) >= refusalHold {
		for s, at := range p.last {
			if now.Sub(at) >= refusalHold {
				delete(p.last, s)
			}
		}
		p.pruned = now
	}
	at, seen := p.last[who]
	p.last[who] = now
	if seen && now.Sub(at) < refusalHold {
		return refusalHold
	}
	return 0
}

// hold waits as long as who's refusal must, or until ctx ends.
func (p *refusalPace) hold(ctx context.Context, who string) {
	d := p.due(who, time.Now())
	if d <= 0 {
		return
	}
	if p.held != nil {
		p.held.Inc()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Requests with no valid credential (401s, refused joins) have no subject
// to pace by: they share one token bucket, strangerRate refusals a second
// answered at once after a burst of strangerBurst, and each beyond it is
// held refusalHold before its answer. A flood of them from 16 clients was
// answered 3,000 times a second and slowed a neighbour tenant's calls
// twentyfold; now it is answered at most strangerRate times a second plus
// once a refusalHold per connection. The burst lets a client that
// mistyped its token, or a test of every route, be answered at once.
const (
	strangerRate  = 200
	strangerBurst = 1000
)

// holdStranger waits, when refusals of requests with no valid credential
// come faster than strangerRate, refusalHold or until ctx ends.
func (s *Server) holdStranger(ctx context.Context) {
	if ok, _ := s.strangers.allow(); ok {
		return
	}
	t := time.NewTimer(refusalHold)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
