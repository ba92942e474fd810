package send

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/wait"
	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
)

// blocking is a process whose remote sends block until released, like
// ergo's Send behind a full send queue.
type blocking struct {
	gen.Process
	release chan struct{}
}

func (b blocking) NodeName() string { return "core@h" }
func (b blocking) Send(to interface{}, _ etf.Term) error {
	if id, ok := to.(gen.ProcessID); ok && id.Node != "core@h" {
		<-b.release
	}
	return nil
}

// TestStuckPeer: a send that blocks returns ErrStuck (sent: it may still
// be delivered); once Limit sends to the peer are stuck, more are refused
// at once (not sent); when the peer drains, sends work again. Local sends
// never wait.
func TestStuckPeer(t *testing.T) {
	p := blocking{release: make(chan struct{})}
	s := &Sender{Timeout: 20 * time.Millisecond, Limit: 2}
	to := gen.ProcessID{Name: "runner", Node: "worker@h"}
	for i := range 2 {
		var se *StuckError
		if err := s.Send(p, to, "m"); !errors.As(err, &se) || !se.Sent || !errors.Is(err, ErrStuck) {
			t.Fatalf("send %d: %v, want stuck after sending", i, err)
		}
	}
	var se *StuckError
	if err := s.Send(p, to, "m"); !errors.As(err, &se) || se.Sent {
		t.Fatalf("third send: %v, want refused without sending", err)
	}
	if err := s.Send(p, gen.ProcessID{Name: "x", Node: "core@h"}, "m"); err != nil {
		t.Fatalf("local send: %v", err)
	}
	close(p.release) // the peer reads again
	var err error
	if werr := wait.Until(context.Background(), 10*time.Second, "a send after the peer drained", func() bool {
		err = s.Send(p, to, "m")
		return err == nil
	}); werr != nil {
		t.Fatalf("%v: %v", werr, err)
	}
}
