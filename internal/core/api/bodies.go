package api

import (
	"net/http"

	"golang.org/x/sync/semaphore"
)

// DefaultBodyBudget is what the request bodies held at once may take when
// Config.BodyBudget is 0.
const DefaultBodyBudget = 32 << 20

// bodyAdmission admits request bodies by memory: a body is held from the
// moment it is read until its handler returns (an invocation's args for
// the whole call), so the bytes of the bodies held at once are bounded,
// and one beyond the bound is refused before a byte of it is read.
type bodyAdmission struct {
	budget int64
	sem    *semaphore.Weighted
}

func newBodyAdmission(budget int64) *bodyAdmission {
	return &bodyAdmission{budget: budget, sem: semaphore.NewWeighted(budget)}
}

// admit reserves what c's body may take, up to limit: its Content-Length
// when declared, else limit; a body larger than the whole budget takes
// all of it. The reservation is given back when the handler returns. It
// answers 429 with Retry-After when the budget has no room.
func (b *bodyAdmission) admit(c *call, limit int64) error {
	n := limit
	if cl := c.r.ContentLength; cl >= 0 && cl < n {
		n = cl
	}
	n = min(n, b.budget)
	if n <= 0 {
		return nil
	}
	if !b.sem.TryAcquire(n) {
		return &apiError{status: http.StatusTooManyRequests, header: http.Header{"Retry-After": {"1"}},
			detail: "Too Many Requests: the core holds as many request bodies as its memory allows; retry shortly"}
	}
	c.release = append(c.release, func() { b.sem.Release(n) })
	return nil
}
