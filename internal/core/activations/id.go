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
	"encoding/binary"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// IDs makes activation ids: ULIDs (48-bit milliseconds, then 80 random
// bits, Crockford base32), so ids sort by creation time and keys in storage
// sort the same way. Ids made by one IDs are strictly increasing, even
// within a millisecond or when the clock steps back. The 80 bits are drawn
// from crypto/rand once per millisecond and counted up within it, so an id
// costs no system call (every synchronous invocation makes one).
type IDs struct {
	mu     sync.Mutex
	last   uint64 // milliseconds of the last id
	hi     uint16 // the 80-bit entropy: hi<<64 | lo
	lo     uint64
	random [10]byte
}

// NewIDs returns a generator.
func NewIDs() *IDs {
	return &IDs{}
}

// New returns the next id; t is the activation's time.
func (g *IDs) New(t time.Time) string {
	ms := ulid.Timestamp(t)
	var u ulid.ULID
	g.mu.Lock()
	if ms > g.last {
		g.last = ms
		rand.Read(g.random[:])
		// The top bit stays clear: room to count up within the millisecond.
		g.hi = binary.BigEndian.Uint16(g.random[:2]) &^ 0x8000
		g.lo = binary.BigEndian.Uint64(g.random[2:])
	} else {
		// Same millisecond, or the clock stepped back: count up.
		g.lo++
		if g.lo == 0 {
			g.hi++
			if g.hi == 0 { // 2^79 ids in one millisecond: move on
				g.last++
			}
		}
	}
	u.SetTime(g.last)
	binary.BigEndian.PutUint16(u[6:8], g.hi)
	binary.BigEndian.PutUint64(u[8:], g.lo)
	g.mu.Unlock()
	return u.String()
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
