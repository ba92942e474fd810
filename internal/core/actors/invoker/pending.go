// Package invoker carries invocations from the core's HTTP side to workers
// and back. An invocation is driven by the caller's own goroutine (no actor
// is blocked per request): it picks a worker from the scheduler's table,
// registers itself in Pending, sends wire.Invoke through one of the invoker
// processes, and waits. Invoker processes (Router) only route each
// wire.Result to its waiting caller. When a worker is lost, Pending answers
// every call in flight there at once.
package invoker

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/edgefaas/edgefaas/internal/actors/wire"
)

// statusWorkerLost is a local status (never on the wire): the worker's node
// went down while the call was in flight.
const statusWorkerLost = -1

const shards = 32

// Pending holds the calls waiting for an answer, sharded to keep lock
// contention low under many concurrent invocations.
type Pending struct {
	next   atomic.Int64
	shards [shards]shard
}

type shard struct {
	mu    sync.Mutex
	calls map[int]*call
}

type call struct {
	node  string
	reply chan wire.Result
}

// NewPending returns an empty table.
func NewPending() *Pending {
	p := &Pending{}
	for i := range p.shards {
		p.shards[i].calls = map[int]*call{}
	}
	return p
}

func (p *Pending) shard(id int) *shard { return &p.shards[id%shards] }

// add registers a call to node and returns its ID and answer channel.
func (p *Pending) add(node string) (int, chan wire.Result) {
	id := int(p.next.Add(1) & (1<<62 - 1))
	c := &call{node: node, reply: make(chan wire.Result, 1)}
	s := p.shard(id)
	s.mu.Lock()
	s.calls[id] = c
	s.mu.Unlock()
	return id, c.reply
}

// remove forgets a call (answered, timed out or never sent).
func (p *Pending) remove(id int) {
	s := p.shard(id)
	s.mu.Lock()
	delete(s.calls, id)
	s.mu.Unlock()
}

// Delivery is what Deliver did with an answer.
type Delivery int

const (
	// Delivered: the caller took the answer.
	Delivered Delivery = iota
	// Unknown: no call has that ID (the caller gave up, or the table never
	// handed it out).
	Unknown
	// WrongSender: the call went to another node than the one that sent
	// the answer; the call keeps waiting for its own.
	WrongSender
)

// Deliver hands a worker's answer, sent by node from, to its caller.
// Only the node the call was sent to may answer it: an answer from any
// other node is refused and the call keeps waiting, so a peer cannot
// answer for another worker by guessing the (sequential) IDs. Unknown IDs
// (the caller gave up) are dropped, and so are IDs this table never hands
// out (zero or negative: a worker's bug or a hostile peer must not crash
// the core's routers). A status outside the wire's range becomes a
// platform error, so a worker cannot pose as the core's own "worker lost".
func (p *Pending) Deliver(from string, r wire.Result) Delivery {
	if r.ID <= 0 {
		return Unknown
	}
	if r.Status < wire.StatusOK || r.Status > wire.StatusTimeout {
		r.Status, r.Error = wire.StatusError, []byte(fmt.Sprintf("worker %s answered with an unknown status %d", from, r.Status))
	}
	s := p.shard(r.ID)
	s.mu.Lock()
	c, ok := s.calls[r.ID]
	switch {
	case !ok:
		s.mu.Unlock()
		return Unknown
	case c.node != from:
		s.mu.Unlock()
		return WrongSender
	}
	delete(s.calls, r.ID)
	s.mu.Unlock()
	r.Node = from // the answer names the node that sent it, whatever its body says
	c.reply <- r
	return Delivered
}

// FailNode answers every call in flight on node with "worker lost".
func (p *Pending) FailNode(node string) int {
	n := 0
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		for id, c := range s.calls {
			if c.node == node {
				delete(s.calls, id)
				c.reply <- wire.Result{ID: id, Node: node, Status: statusWorkerLost}
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// Len is the number of calls in flight.
func (p *Pending) Len() int {
	n := 0
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		n += len(s.calls)
		s.mu.Unlock()
	}
	return n
}
