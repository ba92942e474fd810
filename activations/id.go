// Package activations keeps the record of every invocation and runs
// asynchronous ones. A Recorder writes records to storage in batches on its
// own goroutine, so the request's goroutine never waits for the disk, and
// prunes them by age and total size. A Queue holds asynchronous calls that
// were durably queued, runs them oldest first through a RunFunc (the
// API's Invoker) with bounded concurrency per function and per subject, and
// recovers them after a restart. Both are plain Go types driven by their
// own goroutines, testable without a node.
package activations

import (
	"crypto/rand"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// IDs makes activation ids: ULIDs (48-bit milliseconds, then 80 random
// bits, Crockford base32), so ids sort by creation time and keys in storage
// sort the same way. Ids made by one IDs are strictly increasing, even
// within a millisecond or when the clock steps back.
type IDs struct {
	mu      sync.Mutex
	last    uint64
	entropy *ulid.MonotonicEntropy
}

// NewIDs returns a generator.
func NewIDs() *IDs {
	return &IDs{entropy: ulid.Monotonic(rand.Reader, 0)}
}

// New returns the next id; t is the activation's time.
func (g *IDs) New(t time.Time) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	ms := ulid.Timestamp(t)
	if ms < g.last {
		ms = g.last
	}
	g.last = ms
	id, err := ulid.New(ms, g.entropy)
	if err != nil { // the monotonic entropy ran out within this millisecond
		g.last++
		id = ulid.MustNew(g.last, g.entropy)
	}
	return id.String()
}

// IDTime is the time encoded in an id, or false if it is not one.
func IDTime(id string) (time.Time, bool) {
	u, err := ulid.ParseStrict(id)
	if err != nil {
		return time.Time{}, false
	}
	return ulid.Time(u.Time()), true
}

// ValidID reports whether s is a well-formed id.
func ValidID(s string) bool {
	_, err := ulid.ParseStrict(s)
	return err == nil
}
