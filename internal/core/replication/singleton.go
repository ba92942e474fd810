package replication

import (
	"context"

	"github.com/hashicorp/raft"
)

// RunWhileLeader runs run each time this member becomes the leader, with
// a context that ends when it stops leading, when ctx ends or when the
// member closes; it returns once ctx ended or the member closed and run
// has returned. The group's singletons (the async queue's dispatcher,
// cron, MQTT subscriptions, the sinks' outbox, retention) run so on one
// core at a time as far as each core knows. A deposed leader may learn
// it late (up to its lease, or longer if it is cut off), so what must
// never happen twice, such as a cron tick, is also committed through the
// log before it runs.
func (m *Member) RunWhileLeader(ctx context.Context, run func(context.Context)) {
	// A state change wakes the loop, which then reads the current state:
	// a wake-up dropped by a full channel leaves one queued that is read
	// after the change.
	wake := make(chan raft.Observation, 8)
	obs := raft.NewObserver(wake, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.RaftState)
		return ok
	})
	m.raft.RegisterObserver(obs)
	defer m.raft.DeregisterObserver(obs)
	type runningRun struct {
		stop context.CancelFunc
		done chan struct{}
	}
	var cur *runningRun
	halt := func() {
		if cur != nil {
			cur.stop()
			<-cur.done
			cur = nil
		}
	}
	defer halt()
	for {
		leading := m.raft.State() == raft.Leader
		switch {
		case leading && cur == nil:
			rctx, stop := context.WithCancel(ctx)
			r := &runningRun{stop: stop, done: make(chan struct{})}
			cur = r
			go func() {
				defer close(r.done)
				run(rctx)
			}()
		case !leading && cur != nil:
			halt()
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return
		case <-m.closed:
			return
		}
	}
}
