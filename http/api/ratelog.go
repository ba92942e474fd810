package api

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// logBucket is a token bucket for log lines that unauthenticated clients
// can cause (every 401 and 403): without it, anyone who can reach the API
// writes the core's log at the rate they send requests. Lines beyond the
// rate are counted, and the next line that is written says how many were
// left out.
type logBucket struct {
	mu         sync.Mutex
	now        func() time.Time
	rate       float64 // lines per second
	burst      float64
	tokens     float64
	last       time.Time
	suppressed int                // since the last written line
	counter    prometheus.Counter // all suppressed lines
}

// Default refusal-log rate: 10 lines in a burst, then 1 a second.
const (
	refusalLogBurst = 10
	refusalLogRate  = 1.0
)

func newLogBucket(reg prometheus.Registerer, rate, burst float64) *logBucket {
	b := &logBucket{now: time.Now, rate: rate, burst: burst, tokens: burst,
		counter: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "edgefaas", Subsystem: "http", Name: "refusal_logs_suppressed_total",
			Help: "Log lines of refused requests (401/403) left out by the rate limit.",
		})}
	if reg != nil {
		reg.MustRegister(b.counter)
	}
	b.last = b.now()
	return b
}

// allow reports whether a line may be written now and, if so, how many
// were suppressed since the last one written.
func (b *logBucket) allow() (ok bool, suppressed int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		b.suppressed++
		b.counter.Inc()
		return false, 0
	}
	b.tokens--
	suppressed, b.suppressed = b.suppressed, 0
	return true, suppressed
}
