package supervisors

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/node"

	"github.com/edgefaas/edgefaas/internal/testing/ergotest"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// flaky fails its first fails Inits, like a dependency that comes back.
type flaky struct {
	gen.Server
	fails int32
	inits atomic.Int32
}

func (f *flaky) Init(*gen.ServerProcess, ...etf.Term) error {
	if f.inits.Add(1) <= f.fails {
		return errors.New("dependency not there yet")
	}
	return nil
}

func testNode(t *testing.T) node.Node { return ergotest.Node(t) }

// TestInitFailureBacksOff: a child whose Init fails more often than the
// restart intensity allows, then succeeds, ends up running under a live
// supervisor: its restarts were spaced out instead of burning the budget
// (ergo alone stopped the tree at the first failed Init).
func TestInitFailureBacksOff(t *testing.T) {
	n := testNode(t)
	f := &flaky{fails: Intensity + 1}
	sup, err := n.Spawn("sup", gen.ProcessOptions{}, &Tree{Name: "sup", Children: []Child{{Name: "flaky", Behavior: f, Mailbox: 16}}})
	if err != nil {
		t.Fatalf("the tree did not start: %v", err)
	}
	wait.For(t, 30*time.Second, "an Init past the failures", func() bool {
		if !sup.IsAlive() {
			t.Fatalf("the supervisor gave up after %d failed Inits", f.inits.Load())
		}
		return f.inits.Load() > f.fails
	})
	wait.For(t, 30*time.Second, "the successful incarnation registers", func() bool {
		p := n.ProcessByName("flaky")
		return p != nil && p.IsAlive()
	})
	if !sup.IsAlive() {
		t.Fatalf("after %d Inits the supervisor is not alive", f.inits.Load())
	}
}

// TestDeterministicInitFailureStops: a child that never initialises stops
// its tree after MaxInitFailures, so the node (and the process) stops
// instead of limping on without it.
func TestDeterministicInitFailureStops(t *testing.T) {
	if testing.Short() {
		t.Skip("takes MaxInitFailures backoffs")
	}
	n := testNode(t)
	f := &flaky{fails: 1 << 30}
	sup, err := n.Spawn("sup", gen.ProcessOptions{}, &Tree{Name: "sup", Children: []Child{{Name: "flaky", Behavior: f, Mailbox: 16}}})
	if err != nil {
		return // stopped at once: also not limping on
	}
	if err := wait.Until(context.Background(), time.Minute, "the supervisor stops", func() bool { return !sup.IsAlive() }); err != nil {
		t.Fatalf("%v: it still runs after %d failed Inits", err, f.inits.Load())
	}
	if got := f.inits.Load(); got != MaxInitFailures {
		t.Fatalf("%d Inits before giving up, want %d", got, MaxInitFailures)
	}
}

// receiving takes every string on the routing goroutine (gen.Receiver).
type receiving struct {
	gen.Server
	got chan string
}

func (r *receiving) Receive(_ etf.Pid, msg etf.Term) bool {
	s, ok := msg.(string)
	if ok {
		r.got <- s
	}
	return ok
}

// TestGuardForwardsReceive: a child under a tree still takes messages on
// the routing goroutine (ergo patch 0003) through its guard.
func TestGuardForwardsReceive(t *testing.T) {
	n := testNode(t)
	r := &receiving{got: make(chan string, 1)}
	if _, err := n.Spawn("sup", gen.ProcessOptions{}, &Tree{Name: "sup", Children: []Child{{Name: "receiving", Behavior: r, Mailbox: 16}}}); err != nil {
		t.Fatal(err)
	}
	p := n.ProcessByName("receiving")
	if p == nil {
		t.Fatal("child not started")
	}
	if err := p.Send(p.Self(), "hello"); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-r.got:
		if s != "hello" {
			t.Fatalf("received %q", s)
		}
	default:
		t.Fatal("the send returned before Receive took the message: it went to the mailbox")
	}
}
