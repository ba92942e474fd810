package api

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
)

// DefaultBodyBudget is what the request bodies held at once may take when
// Config.BodyBudget is 0.
const DefaultBodyBudget = 32 << 20

// Body admission's shares (docs/RATIONALE.md says how they were chosen).
const (
	// smallBody is the largest body the reserve admits: a small JSON
	// body's bound, far above a usual invocation's arguments.
	smallBody = maxJSONBodyBytes
	// reserveShare is the part of the budget kept for small bodies.
	reserveShare = 8
	// subjectShare is the part of the large bodies' pool one subject's
	// bodies may hold at once beyond its first.
	subjectShare = 2
)

// bodyAdmission admits request bodies by memory: a body is held from the
// moment it is read until its handler returns (an invocation's args for
// the whole call), so the bytes of the bodies held at once are bounded,
// and one beyond the bound is refused before a byte of it is read.
//
// One client must not take the bound from the others, so the budget is
// shared: a reserve of it (1/reserveShare) only admits small bodies,
// which a flood of large ones cannot take, and one subject's bodies hold
// at most 1/subjectShare of the rest, except that its first body may be
// as large as the rest (one upload of the largest code still fits).
type bodyAdmission struct {
	budget  int64               // the large bodies' pool: the budget less the reserve
	sem     *semaphore.Weighted // that pool
	reserve *semaphore.Weighted // the small bodies' reserve
	share   int64               // what a subject may hold beyond its first body

	mu   sync.Mutex
	held map[string]int64 // by subject, both pools

	pace refusalPace
}

func newBodyAdmission(budget int64) *bodyAdmission {
	reserve := budget / reserveShare
	pool := budget - reserve
	return &bodyAdmission{budget: pool, sem: semaphore.NewWeighted(pool), reserve: semaphore.NewWeighted(max(reserve, 1)),
		share: pool / subjectShare, held: map[string]int64{}}
}

// admit reserves what c's body may take, up to limit: its Content-Length
// when declared, else limit; a body larger than the pool takes all of it.
// A small body that finds the pool full takes from the reserve. The
// reservation is given back when the handler returns. It answers 429
// with Retry-After, and closes the connection, when there is no room for
// the body or its subject holds its share: the body is never read. A
// subject refused again within the Retry-After waits for it first
// (refusalPace).
func (b *bodyAdmission) admit(c *call, limit int64) error {
	n := limit
	if cl := c.r.ContentLength; cl >= 0 && cl < n {
		n = cl
	}
	n = min(n, b.budget)
	if n <= 0 {
		return nil
	}
	who := c.subject.Name
	if !b.take(who, n) {
		return b.refuse(c, "the request bodies of subject "+who+" already hold its share of the core's memory for them")
	}
	sem := b.sem
	if !sem.TryAcquire(n) {
		if sem = b.reserve; n > smallBody || !sem.TryAcquire(n) {
			b.give(who, n)
			return b.refuse(c, "the core holds as many request bodies as its memory allows")
		}
	}
	c.release = append(c.release, func() { sem.Release(n); b.give(who, n) })
	return nil
}

// refuse is c's refusal for why, once its subject's pace allows it.
func (b *bodyAdmission) refuse(c *call, why string) error {
	b.pace.hold(c.r.Context(), c.subject.Name)
	return tooManyBodies(why)
}

// take counts n more bytes held by who's bodies, unless who already holds
// bodies and n more would pass its share.
func (b *bodyAdmission) take(who string, n int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if h := b.held[who]; h > 0 && h+n > b.share {
		return false
	}
	b.held[who] += n
	return true
}

func (b *bodyAdmission) give(who string, n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held[who] -= n; b.held[who] <= 0 {
		delete(b.held, who)
	}
}

// tooManyBodies is the refusal of a body before it is read: 429 with
// Retry-After, and "Connection: close" so that the server closes the
// connection rather than read and discard what the client still sends.
func tooManyBodies(why string) *apiError {
	return &apiError{status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {strconv.Itoa(int(refusalHold / time.Second))}, "Connection": {"close"}},
		detail: "Too Many Requests: " + why + "; retry shortly"}
}
