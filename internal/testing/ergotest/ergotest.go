// Package ergotest gives tests of actors a real ergo node and real
// mailboxes: a bare node on 127.0.0.1 (anonymous metrics off), processes
// spawned with a chosen mailbox size and fallback, and a collector process
// that hands every message it receives to a channel. Nodes are meant to
// live for one test (ergo's own data races show after a minute).
package ergotest

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/ergo-services/ergo"
	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/node"

	"github.com/edgefaas/edgefaas/internal/actors/wire"
	"github.com/edgefaas/edgefaas/internal/ergonode"
)

var seq atomic.Int64

// Node starts a node stopped at the end of the test.
func Node(t testing.TB) node.Node {
	t.Helper()
	if err := wire.Register(); err != nil {
		t.Fatal(err)
	}
	n, err := ergo.StartNode(fmt.Sprintf("test%d@127.0.0.1", seq.Add(1)), "cookie", node.Options{
		Listeners:        []node.Listener{{Hostname: "127.0.0.1", Listen: 0}},
		StaticRoutesOnly: true,
		Registrar:        ergonode.NoRegistrar{}, // ergo's default serves names on *:4369
		System:           node.System{DisableAnonMetrics: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

// Spawn starts b as name with a mailbox of size mailbox; a non-empty
// fallback names the process that receives what overflows it.
func Spawn(t testing.TB, n node.Node, name string, mailbox uint16, fallback string, b gen.ProcessBehavior) gen.Process {
	t.Helper()
	opts := gen.ProcessOptions{MailboxSize: mailbox}
	if fallback != "" {
		opts.Fallback = gen.ProcessFallback{Name: fallback, Tag: name}
	}
	p, err := n.Spawn(name, opts, b)
	if err != nil {
		t.Fatalf("spawn %s: %v", name, err)
	}
	return p
}

// Collector is a process that passes every message to C.
type Collector struct {
	gen.Server
	C chan etf.Term
}

// HandleInfo forwards msg.
func (c *Collector) HandleInfo(_ *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	c.C <- msg
	return gen.ServerStatusOK
}

// Collect spawns a collector with a buffer of size and a large mailbox.
func Collect(t testing.TB, n node.Node, name string, size int) (gen.Process, chan etf.Term) {
	t.Helper()
	c := &Collector{C: make(chan etf.Term, size)}
	return Spawn(t, n, name, 65535, "", c), c.C
}
