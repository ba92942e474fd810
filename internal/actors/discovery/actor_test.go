package discovery

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ergo-services/ergo/gen"

	"github.com/edgefaas/edgefaas/internal/supervisors"
	"github.com/edgefaas/edgefaas/internal/testing/ergotest"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestListenerFailureRestarts: when the beacon listener's socket fails, the
// discovery process stops with the error and its supervisor starts it again
// with a new socket. (The listener used to return silently, leaving a live
// process that would never hear a core again.) Nothing is sent: the socket
// only joins the group on the loopback interface.
func TestListenerFailureRestarts(t *testing.T) {
	n := ergotest.Node(t)
	a := &Actor{Interface: "lo", Cookie: "c", OnCore: func(Beacon) {}, Interval: time.Hour,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if _, err := n.Spawn("sup", gen.ProcessOptions{}, &supervisors.Tree{Name: "sup",
		Children: []supervisors.Child{{Name: Name, Behavior: a, Mailbox: 64}}}); err != nil {
		t.Skipf("cannot listen for beacons on lo here: %v", err)
	}
	first := n.ProcessByName(Name)
	if first == nil {
		t.Fatal("no discovery process")
	}
	old, conn := first.Self(), a.conn
	conn.Close() // the socket fails under the listener
	wait.For(t, 10*time.Second, "the discovery process restarts after its listener failed", func() bool {
		p := n.ProcessByName(Name)
		return p != nil && p.Self() != old && p.IsAlive()
	})
}
