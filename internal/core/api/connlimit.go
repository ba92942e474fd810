package api

import (
	"net"
	"net/http"
	"sync"
)

// Connection bounds. The API holds at most maxConns connections at once,
// and never more than the process's file descriptor limit leaves beside
// fdReserve for the store (its open tables, 256 in the binary, its WAL and
// manifest), the worker's files, node links and upload validators. A
// connection beyond the bound waits in the kernel's accept queue, where
// it costs the process nothing, until one closes (the idle and header
// timeouts close those that do nothing).
const (
	maxConns  = 1024
	fdReserve = 512
)

// connLimiter is a listener that accepts a connection only while fewer
// than limit() are open. limit is read again at each accept, so a
// descriptor limit lowered while the core runs (prlimit) is obeyed.
//
// At the bound, a connection idle between two requests (the server's
// ConnState hook, trackConnState, tells which) is closed to make room, the
// one idle the longest first: HTTP lets a server close an idle keep-alive
// connection at any time, and clients open a new one. Without it, one
// client that leaks or parks keep-alive connections would hold every place
// until the idle timeout and lock every other client out.
type connLimiter struct {
	net.Listener
	limit func() int

	mu   sync.Mutex
	cond *sync.Cond
	open int
	done bool
	// idle holds the open connections idle between requests; seq orders
	// when they became idle.
	idle map[*limitedConn]struct{}
	seq  uint64
}

func newConnLimiter(ln net.Listener, limit func() int) *connLimiter {
	l := &connLimiter{Listener: ln, limit: limit, idle: map[*limitedConn]struct{}{}}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// connBound is the number of API connections the process can hold: at
// most maxConns, at most its descriptor limit (nofile; 0 unknown) less
// fdReserve, and at least 1 so the API always answers someone.
func connBound(nofile uint64) int {
	n := maxConns
	if nofile > 0 {
		if nofile <= fdReserve {
			return 1
		}
		n = min(n, int(nofile-fdReserve))
	}
	return max(n, 1)
}

func (l *connLimiter) Accept() (net.Conn, error) {
	l.mu.Lock()
	for !l.done && l.open >= l.limit() {
		if victim := l.longestIdle(); victim != nil {
			delete(l.idle, victim)
			l.mu.Unlock()
			victim.Close() // gives its place back (release)
			l.mu.Lock()
			continue
		}
		l.cond.Wait()
	}
	l.open++
	l.mu.Unlock()
	c, err := l.Listener.Accept()
	if err != nil {
		l.release()
		return nil, err
	}
	return &limitedConn{Conn: c, l: l}, nil
}

// longestIdle is the connection idle the longest, nil if none is idle;
// the caller holds l.mu.
func (l *connLimiter) longestIdle() *limitedConn {
	var victim *limitedConn
	for c := range l.idle {
		if victim == nil || c.idleSince < victim.idleSince {
			victim = c
		}
	}
	return victim
}

func (l *connLimiter) Close() error {
	l.mu.Lock()
	l.done = true
	l.cond.Broadcast()
	l.mu.Unlock()
	return l.Listener.Close()
}

func (l *connLimiter) release() {
	l.mu.Lock()
	l.open--
	l.cond.Signal()
	l.mu.Unlock()
}

// Open is the number of connections open now (for metrics and tests).
func (l *connLimiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// limitedConn gives its place back once, when closed.
type limitedConn struct {
	net.Conn
	l         *connLimiter
	once      sync.Once
	idleSince uint64 // l.seq when it last became idle (under l.mu)
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.idle, c)
		c.l.mu.Unlock()
		c.l.release()
	})
	return err
}

// trackConnState is the http.Server's ConnState hook: it tells a
// connection's limiter when the connection sits idle between two requests
// (then it may be closed to make room) and when a request starts on it.
// A TLS connection is unwrapped to the limiter's connection below it.
func trackConnState(c net.Conn, st http.ConnState) {
	if nc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = nc.NetConn()
	}
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	lc.l.mu.Lock()
	defer lc.l.mu.Unlock()
	if st == http.StateIdle {
		lc.l.seq++
		lc.idleSince = lc.l.seq
		lc.l.idle[lc] = struct{}{}
		lc.l.cond.Signal() // an Accept waiting at the bound may take its place
	} else {
		delete(lc.l.idle, lc)
	}
}
