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
	ergotest.Spawn(t, node, Name, 1, OverflowName, &Actor{Policy: policy, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
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
	// Once every request is either held by the policy or answered busy,
	// let the held ones finish.
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
