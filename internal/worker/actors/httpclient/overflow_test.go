package httpclient

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/edgefaas/edgefaas/internal/outbound"
	"github.com/edgefaas/edgefaas/internal/testing/ergotest"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// held answers every request once released.
type held struct {
	release chan struct{}
	in      *atomic.Int32 // requests waiting
}

func (h held) Do(ctx context.Context, _ *outbound.Request) *outbound.Response {
	h.in.Add(1)
	select {
	case <-h.release:
		return &outbound.Response{Status: 200}
	case <-ctx.Done():
		return &outbound.Response{Err: ctx.Err()}
	}
}

// gated is the real Actor behind a gate: its loop takes one message and
// waits there until the gate opens, so a flood must overflow its mailbox
// however fast the machine drains it.
type gated struct {
	*Actor
	gate chan struct{}
}

func (g *gated) HandleInfo(p *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	<-g.gate
	return g.Actor.HandleInfo(p, msg)
}

// TestOverflowAnswersBusy floods a real HTTP-client process (mailbox of 1,
// falling back to the overflow answerer) with requests from many guests:
// every request is answered, those the mailbox could not take with
// ErrBusy, none dropped. (The test once called the overflow handler
// directly.)
func TestOverflowAnswersBusy(t *testing.T) {
	const n = 1000
	node := ergotest.Node(t)
	ergotest.Spawn(t, node, OverflowName, 65535, "", &Overflow{})
	policy := held{release: make(chan struct{}), in: &atomic.Int32{}}
	gate := make(chan struct{})
	ergotest.Spawn(t, node, Name, 1, OverflowName, &gated{Actor: &Actor{Policy: policy, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}, gate: gate})
	c := &Client{Process: node.ProcessByName}
	var wg sync.WaitGroup
	var mu sync.Mutex
	busy, ok, other := 0, 0, 0
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			r := c.Do(ctx, &outbound.Request{Function: "m/f"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(r.Err, ErrBusy):
				busy++
			case r.Err == nil:
				ok++
			default:
				other++
				t.Errorf("answer %v", r.Err)
			}
		}()
	}
	// While the loop waits at the gate, the mailbox holds one request and
	// the rest overflow; then every request is either held by the policy
	// or answered busy, and the held ones may finish.
	wait.For(t, 20*time.Second, "a request answered busy", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return busy > 0
	})
	close(gate)
	wait.For(t, 20*time.Second, "every request held or answered", func() bool {
		mu.Lock()
		answered := busy + other
		mu.Unlock()
		return int(policy.in.Load())+answered == n
	})
	close(policy.release)
	wg.Wait()
	if busy == 0 {
		t.Fatal("the mailbox never overflowed: the test proves nothing")
	}
	t.Logf("%d answered busy, %d performed", busy, ok)
}
