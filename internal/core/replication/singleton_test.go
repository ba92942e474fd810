package replication

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// TestSingletonRunsOnTheLeaderAndHandsOver: each member runs a singleton
// while it leads; it runs on the leader only, stops on the member that is
// stopped, and starts on the new leader.
func TestSingletonRunsOnTheLeaderAndHandsOver(t *testing.T) {
	g := newGroup(t, 3, nil)
	var mu sync.Mutex
	running := map[string]int{}
	starts := 0
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	for _, tm := range g.live() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tm.m.RunWhileLeader(ctx, func(rctx context.Context) {
				mu.Lock()
				running[string(tm.id)]++
				starts++
				mu.Unlock()
				<-rctx.Done()
				mu.Lock()
				running[string(tm.id)]--
				mu.Unlock()
			})
		}()
	}
	// onlyOn reports whether the singleton runs once, on member id.
	onlyOn := func(id string) (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		total := 0
		for _, n := range running {
			total += n
		}
		return total == 1 && running[id] == 1, fmt.Sprintf("running %v", running)
	}
	first := g.leader()
	waitState(t, "the singleton on the first leader", func() (bool, string) { return onlyOn(string(first.id)) })
	g.stop(first)
	next := g.leader()
	waitState(t, "the singleton handed over to the next leader", func() (bool, string) { return onlyOn(string(next.id)) })
	mu.Lock()
	defer mu.Unlock()
	if running[string(first.id)] != 0 {
		t.Errorf("the singleton still runs on the stopped member: %v", running)
	}
	if starts < 2 {
		t.Errorf("%d starts, want at least 2", starts)
	}
}
