package api

import (
	"log"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// logBucket is a token bucket for log lines that unauthenticated clients
// can cause (every 401 and 403): without it, anyone who can reach the API
// writes the core's log at the rate they send requests. Lines beyond the
// rate are counted, and the next line that is written says how many were
// left out. The same bucket bounds how fast such clients are refused at
// once (Server.strangers, holdStranger).
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
	return newNamedLogBucket(reg, rate, burst, "refusal_logs_suppressed_total",
		"Log lines of refused requests (401/403) left out by the rate limit.")
}

func newNamedLogBucket(reg prometheus.Registerer, rate, burst float64, name, help string) *logBucket {
	b := &logBucket{now: time.Now, rate: rate, burst: burst, tokens: burst,
		counter: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "edgefaas", Subsystem: "http", Name: name, Help: help,
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

// serverErrorLog is net/http's error log (TLS handshake failures, malformed
// requests: anyone can cause them) through a logBucket.
func serverErrorLog(l *slog.Logger, b *logBucket) *log.Logger {
	return log.New(limitedWriter{l: l, b: b}, "", 0)
}

type limitedWriter struct {
	l *slog.Logger
	b *logBucket
}

func (w limitedWriter) Write(p []byte) (int, error) {
	if ok, suppressed := w.b.allow(); ok {
		attrs := []any{}
		if suppressed > 0 {
			attrs = append(attrs, "suppressed", suppressed)
		}
		w.l.Warn(strings.TrimSpace(string(p)), attrs...)
	}
	return len(p), nil
}
