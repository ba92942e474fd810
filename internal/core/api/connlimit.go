package api

import (
	"net"
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
type connLimiter struct {
	net.Listener
	limit func() int

	mu   sync.Mutex
	cond *sync.Cond
	open int
	done bool
}

func newConnLimiter(ln net.Listener, limit func() int) *connLimiter {
	l := &connLimiter{Listener: ln, limit: limit}
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
	l    *connLimiter
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.l.release)
	return err
}
