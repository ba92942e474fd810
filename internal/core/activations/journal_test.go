package activations_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/activations"
	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// groupLog stands for a core group's log in plain Go: a write through
// any live member is applied to every live member's store, then told to
// its queue, as the group's state machine does. A member marked down
// takes no write (its writes fail, as a killed leader's would).
type groupLog struct {
	mu     sync.Mutex
	stores []*storage.Store
	queues []*activations.Queue
	down   []bool
}

var errDown = errors.New("member down")

func (g *groupLog) apply(from int, write func(i int) error) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.down[from] {
		return errDown
	}
	for i := range g.stores {
		if g.down[i] {
			continue
		}
		if err := write(i); err != nil {
			return err
		}
	}
	return nil
}

// member is member i's Journal.
type member struct {
	g *groupLog
	i int
}

func (m member) EnqueueActivation(rec storage.Activation, call storage.QueuedCall) error {
	return m.g.apply(m.i, func(i int) error {
		if err := m.g.stores[i].EnqueueActivation(rec, call); err != nil {
			return err
		}
		m.g.queues[i].Enqueued(rec, call)
		return nil
	})
}

func (m member) WriteActivations(recs []storage.Activation) error {
	return m.g.apply(m.i, func(i int) error {
		if err := m.g.stores[i].WriteActivations(recs, true); err != nil {
			return err
		}
		m.g.queues[i].Written(recs)
		return nil
	})
}

// TestQueueFollowsTheLog: with a Journal, a call queued through a
// follower runs on the leader only; when the leader is lost with a call
// running and others waiting, the next leader runs every one of them
// (at least once) from its own store, and each ends final there.
func TestQueueFollowsTheLog(t *testing.T) {
	g := &groupLog{down: make([]bool, 2)}
	var mu sync.Mutex
	runs := map[int]map[string]int{0: {}, 1: {}} // member → call → runs
	hold := make(chan struct{})                  // the first member's runs hang until closed
	for i := range 2 {
		s := open(t, t.TempDir())
		t.Cleanup(func() { s.Close() })
		rec := activations.NewRecorder(activations.RecorderConfig{Store: s})
		t.Cleanup(rec.Close)
		g.stores = append(g.stores, s)
		q := activations.NewQueue(activations.QueueConfig{Store: s, Recorder: rec, Journal: member{g, i}, PerFunction: 1,
			Run: func(ctx context.Context, a storage.Activation, c storage.QueuedCall, args activations.ArgsFunc) activations.Outcome {
				mu.Lock()
				runs[i][a.ID]++
				mu.Unlock()
				got, _ := args()
				if i == 0 && string(got) == `{"hang":true}` {
					select {
					case <-hold:
					case <-ctx.Done():
					}
				}
				a.Status, a.Result = storage.StatusSuccess, got
				return activations.Outcome{Record: a}
			}})
		g.queues = append(g.queues, q)
	}
	for _, q := range g.queues {
		if err := q.Start(); err != nil {
			t.Fatal(err)
		}
	}
	ids := activations.NewIDs()
	submit := func(through int, args string) string {
		t.Helper()
		id := ids.New(time.Now())
		call := storage.QueuedCall{Module: "m", Function: "f", Subject: "s", Args: json.RawMessage(args)}
		if err := g.queues[through].Submit(storage.Activation{ID: id, Module: "m", Function: "f", QueuedAt: time.Now()}, call); err != nil {
			t.Fatal(err)
		}
		return id
	}
	lead0, stop0 := context.WithCancel(context.Background())
	go g.queues[0].Lead(lead0)
	// Queued through the follower: run by the leader, final on both.
	first := submit(1, `{"n":1}`)
	for _, s := range g.stores {
		if a := waitFinal(t, s, first); a.Status != storage.StatusSuccess {
			t.Fatalf("%+v", a)
		}
	}
	// One call hangs on the leader (PerFunction 1: the others wait
	// behind it), then the leader is lost.
	hung := submit(0, `{"hang":true}`)
	waiting := []string{submit(1, `{"n":2}`), submit(0, `{"n":3}`)}
	for {
		mu.Lock()
		started := runs[0][hung]
		mu.Unlock()
		if started > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	g.mu.Lock()
	g.down[0] = true
	g.mu.Unlock()
	stop0()
	lead1, stop1 := context.WithCancel(context.Background())
	defer stop1()
	go g.queues[1].Lead(lead1)
	for _, id := range append([]string{hung}, waiting...) {
		if a := waitFinal(t, g.stores[1], id); a.Status != storage.StatusSuccess {
			t.Fatalf("%+v", a)
		}
	}
	close(hold)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, q := range g.queues {
		q.Stop(ctx)
	}
	mu.Lock()
	defer mu.Unlock()
	if n := runs[1][first]; n != 0 {
		t.Errorf("the follower ran the call queued through it %d times while the other led", n)
	}
	for _, id := range append([]string{hung}, waiting...) {
		if runs[1][id] != 1 {
			t.Errorf("call %s ran %d times on the new leader, want 1 (runs on the old: %d)", id, runs[1][id], runs[0][id])
		}
	}
	if d := g.queues[1].Depth(); d != 0 {
		t.Errorf("the new leader's queue holds %d calls after all ended", d)
	}
}
