// Package send gives sends to other nodes a deadline. ergo's Send to a
// remote process blocks, with no deadline, once the connection's send
// queue is full (a peer that is hung, SIGSTOPped or behind a stalled link
// stops reading; ergo notices only after 60 s). A Sender runs each remote
// send on its own goroutine and gives up after Timeout with ErrStuck; while
// Limit sends to one peer are stuck, further sends to it fail at once
// (ErrStuck, nothing sent) instead of piling up goroutines.
package send

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
)

// ErrStuck is the error of a send that did not complete within the
// deadline (it may still be delivered later), or that was not attempted
// because the peer already has Limit sends stuck (see Sent).
var ErrStuck = errors.New("peer is not accepting messages")

// Defaults for a zero Sender.
const (
	DefaultTimeout = 5 * time.Second
	DefaultLimit   = 64
)

// Sender sends with a deadline; the zero value uses the defaults. It is
// safe for concurrent use.
type Sender struct {
	Timeout time.Duration
	Limit   int

	mu    sync.Mutex
	stuck map[string]int // sends still blocked, by peer node
}

// StuckError is returned with ErrStuck; Sent reports whether the message
// went into ergo's queue (it may be delivered later) or was refused
// before any attempt.
type StuckError struct {
	Node string
	Sent bool
	Wait time.Duration
}

func (e *StuckError) Error() string {
	if e.Sent {
		return fmt.Sprintf("%s: a send to %s waited %s", ErrStuck, e.Node, e.Wait)
	}
	return fmt.Sprintf("%s: sends to %s are stuck", ErrStuck, e.Node)
}

// Unwrap makes errors.Is(err, ErrStuck) hold.
func (e *StuckError) Unwrap() error { return ErrStuck }

// Send sends msg from p to to (a pid, a gen.ProcessID or a local name).
// Local sends go straight to p.Send (they never block).
func (s *Sender) Send(p gen.Process, to any, msg etf.Term) error {
	peer := nodeOf(to)
	if peer == "" || peer == p.NodeName() {
		return p.Send(to, msg)
	}
	limit, timeout := s.Limit, s.Timeout
	if limit <= 0 {
		limit = DefaultLimit
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	s.mu.Lock()
	if s.stuck[peer] >= limit {
		s.mu.Unlock()
		return &StuckError{Node: peer}
	}
	s.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- p.Send(to, msg) }()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
	}
	s.mu.Lock()
	if s.stuck == nil {
		s.stuck = map[string]int{}
	}
	s.stuck[peer]++
	s.mu.Unlock()
	go func() {
		<-done
		s.mu.Lock()
		if s.stuck[peer]--; s.stuck[peer] <= 0 {
			delete(s.stuck, peer)
		}
		s.mu.Unlock()
	}()
	return &StuckError{Node: peer, Sent: true, Wait: timeout}
}

func nodeOf(to any) string {
	switch t := to.(type) {
	case etf.Pid:
		return string(t.Node)
	case gen.ProcessID:
		return t.Node
	}
	return ""
}
