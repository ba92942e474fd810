package core

import (
	"context"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/activations"
	"github.com/edgefaas/edgefaas/internal/core/replication"
)

// leaderCatchUp bounds how long a new leader waits to have applied the
// log's committed entries before its queue dispatches.
const leaderCatchUp = 10 * time.Second

// startGroupQueue starts a group member's asynchronous queue: its writes
// go through the group's log, it indexes every call the log applies
// (whichever core took it), and it dispatches while this core leads.
// It stops before the cluster, as a single core's queue does.
func (c *assembly) startGroupQueue(qcfg activations.QueueConfig) error {
	q, err := c.invocations.NewQueue(qcfg)
	if err != nil {
		return err
	}
	m := c.group.member
	// Followed before the store is read (Start): a call applied between
	// the two is indexed twice, once kept.
	m.FSM().OnApplied(func(cmd replication.Command, _ any) {
		switch cmd := cmd.(type) {
		case replication.EnqueueActivation:
			q.Enqueued(cmd.Record, cmd.Call)
		case replication.EnqueueCronTick:
			q.Enqueued(cmd.Record, cmd.Call)
		case replication.WriteActivations:
			q.Written(cmd.Records)
			c.recorder.Applied(cmd.Records)
		}
	})
	if err := c.invocations.Start(q); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		m.RunWhileLeader(ctx, func(lctx context.Context) {
			// A new leader holds every committed entry but may not have
			// applied them all: a call whose end it has not applied yet
			// would run again.
			if err := m.Raft().Barrier(leaderCatchUp).Error(); err != nil {
				c.log.Warn("core group: the new leader's queue dispatches before it caught up with the log", "err", err)
			}
			q.Lead(lctx)
		})
	}()
	c.onStop(func() error {
		cancel()
		<-done
		ctx, cancel := c.grace(c.cfg.ShutdownGrace)
		defer cancel()
		q.Stop(ctx)
		return nil
	})
	return nil
}
