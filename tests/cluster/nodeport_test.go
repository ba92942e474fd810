package cluster_test

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// idleFlood keeps k idle TCP connections open to addr (no TLS, no bytes
// sent), replacing each one the other end closes, until stop. It counts the
// connections it made.
type idleFlood struct {
	made atomic.Int64
	stop context.CancelFunc
	wg   sync.WaitGroup
}

func startIdleFlood(t *testing.T, addr string, k int) *idleFlood {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &idleFlood{stop: cancel}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}}
	for range k {
		f.wg.Go(func() {
			for ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					// The core is down (a restart): try again shortly.
					select {
					case <-ctx.Done():
					case <-time.After(10 * time.Millisecond):
					}
					continue
				}
				f.made.Add(1)
				// Hold it until the core closes it (or the test ends).
				stop := context.AfterFunc(ctx, func() { c.Close() })
				var b [1]byte
				for {
					if _, err := c.Read(b[:]); err != nil {
						break
					}
				}
				stop()
				c.Close()
			}
		})
	}
	t.Cleanup(f.Stop)
	return f
}

// Stop ends the flood and waits for its connections to close.
func (f *idleFlood) Stop() {
	f.stop()
	f.wg.Wait()
}

// joinedWhileFlooding waits until the core lists worker and then until
// the flood has made more connections than it had at that moment: the
// join happened while the flood was still running.
func joinedWhileFlooding(t *testing.T, core *testcluster.Core, f *idleFlood, worker string) {
	t.Helper()
	core.WaitWorkers(t, func(ns []client.Node) bool { return testcluster.Has(ns, worker) })
	atJoin := f.made.Load()
	wait.For(t, 30*time.Second, "the flood keeps connecting after the join", func() bool { return f.made.Load() > atJoin })
}

// TestNodePortFlood: idle connections to the core's node port, always k of
// them (each replaced when the core closes it), do not keep a worker from
// joining, nor from joining again after the core is killed and restarted.
func TestNodePortFlood(t *testing.T) {
	const k = 8
	core := testcluster.StartCore(t)
	flood := startIdleFlood(t, core.NodeAddr, k)
	wait.For(t, 30*time.Second, "the flood holds its connections", func() bool { return flood.made.Load() >= k })

	core.StartWorker(t, "127.0.0.2")
	joinedWhileFlooding(t, core, flood, "worker@127.0.0.2")

	// The link dropped by a killed core comes back under the same flood.
	core.Kill()
	core.Restart()
	joinedWhileFlooding(t, core, flood, "worker@127.0.0.2")
}
