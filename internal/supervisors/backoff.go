package supervisors

import (
	"fmt"
	"sync"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
)

// Restart backoff for children whose Init fails. ergo's supervisor panics
// (and so stops the whole tree) the first time a child's Init returns an
// error, and restarts a crashed child at once, so a dependency that is
// briefly missing would stop the node, and a crash loop would burn the
// restart budget in microseconds. A guarded child's failed Init instead
// starts a process that stops at once with the error (one counted restart),
// and each following start waits InitBackoff, doubling up to
// MaxInitBackoff: 11 starts span more than 8 s, so a transient failure
// never exceeds the intensity (ergo counts in whole seconds: more than 10
// starts within 5 s). After MaxInitFailures in a row the
// error reaches ergo, and the tree (and the node, and with it the process)
// stops: the failure is deterministic.
const (
	InitBackoff     = 250 * time.Millisecond
	MaxInitBackoff  = time.Second
	MaxInitFailures = 12
)

// guard wraps a child's behaviour with the backoff above. Only one
// incarnation of a child runs at a time, so its state is the child's.
type guard struct {
	gen.ServerBehavior
	mu       sync.Mutex
	failures int   // consecutive failed Inits
	failed   error // this incarnation's Init error, nil once initialised
}

type initFailed struct{}

func (g *guard) state() (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.failures, g.failed
}

// Init waits out the backoff, then runs the child's Init.
func (g *guard) Init(p *gen.ServerProcess, args ...etf.Term) error {
	n, _ := g.state()
	if n > 0 {
		time.Sleep(min(InitBackoff<<(n-1), MaxInitBackoff))
	}
	err := g.ServerBehavior.Init(p, args...)
	g.mu.Lock()
	defer g.mu.Unlock()
	if err == nil {
		g.failures, g.failed = 0, nil
		return nil
	}
	g.failures++
	if g.failures >= MaxInitFailures {
		return fmt.Errorf("init failed %d times in a row: %w", g.failures, err)
	}
	g.failed = err
	p.Send(p.Self(), initFailed{})
	return nil
}

func (g *guard) stopping() gen.ServerStatus {
	if _, err := g.state(); err != nil {
		return gen.ServerStatus(fmt.Errorf("init: %w", err))
	}
	return nil
}

// HandleInfo stops an incarnation whose Init failed, else delegates.
func (g *guard) HandleInfo(p *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	if st := g.stopping(); st != nil {
		return st
	}
	if _, ok := msg.(initFailed); ok {
		return gen.ServerStatusOK
	}
	return g.ServerBehavior.HandleInfo(p, msg)
}

// HandleCast: as HandleInfo.
func (g *guard) HandleCast(p *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	if st := g.stopping(); st != nil {
		return st
	}
	return g.ServerBehavior.HandleCast(p, msg)
}

// HandleCall: as HandleInfo.
func (g *guard) HandleCall(p *gen.ServerProcess, from gen.ServerFrom, msg etf.Term) (etf.Term, gen.ServerStatus) {
	if st := g.stopping(); st != nil {
		return nil, st
	}
	return g.ServerBehavior.HandleCall(p, from, msg)
}

// HandleDirect answers an error while the incarnation is failing.
func (g *guard) HandleDirect(p *gen.ServerProcess, ref etf.Ref, msg interface{}) (interface{}, gen.DirectStatus) {
	if st := g.stopping(); st != nil {
		return nil, st
	}
	return g.ServerBehavior.HandleDirect(p, ref, msg)
}

// Terminate runs the child's Terminate only if its Init succeeded.
func (g *guard) Terminate(p *gen.ServerProcess, reason string) {
	if _, err := g.state(); err != nil {
		return
	}
	g.ServerBehavior.Terminate(p, reason)
}

// Receive forwards to a child that takes messages on the routing goroutine
// (gen.Receiver, ergo patch 0003), except while its Init is failing: then
// the message goes to the mailbox, which stops the incarnation.
func (g *guard) Receive(from etf.Pid, msg etf.Term) bool {
	r, ok := g.ServerBehavior.(gen.Receiver)
	if !ok {
		return false
	}
	if _, err := g.state(); err != nil {
		return false
	}
	return r.Receive(from, msg)
}
