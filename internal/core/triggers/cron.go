package triggers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/core/triggers/eventspec"
)

// runCron fires a cron trigger once per tick. Its state (the last tick
// fired) is committed with each tick's activation, so across a restart a
// tick is neither run twice nor skipped silently: ticks the core missed
// are folded into one late run whose record counts them (Due).
func (m *Manager) runCron(ctx context.Context, log *slog.Logger, r *runner) error {
	sched, err := eventspec.ParseSchedule(r.event.Schedule)
	if err != nil {
		return fmt.Errorf("schedule %q: %w", r.event.Schedule, err) // validated at upload: a bug
	}
	f := r.fn.Load()
	installed := time.Now().UTC()
	st, err := m.cfg.CronStates.InitCronState(r.key, storage.CronState{Module: f.Module, Function: f.Name, LastTick: installed})
	if err != nil {
		return err
	}
	// The wall clock says which tick is due; the sleeps are monotonic and
	// bounded, and a step of the wall clock moves the schedule with it
	// (eventspec.Follower).
	fl := eventspec.Follower{Schedule: sched, Last: st.LastTick, Local: st.LastTick.Equal(installed)}
	origin := time.Now()
	retry := 0
	for {
		now := time.Now()
		step := fl.Look(now.Round(0), now.Sub(origin))
		if step.Shift != 0 {
			log.Warn("the wall clock stepped; the cron schedule follows it", "step", step.Shift, "last_tick", fl.Last, "moved", step.Moved)
			if step.Moved {
				if err := m.cfg.CronStates.ShiftCronState(r.key, st.LastTick, fl.Last); err != nil && !errors.Is(err, storage.ErrTickDone) {
					return err
				}
				if st, err = m.cfg.Store.GetCronState(r.key); err != nil {
					return err
				}
				fl.Last = st.LastTick
			}
		}
		if !step.Due {
			if !sleep(ctx, step.Wait) {
				return errStopped
			}
			continue
		}
		tick, missed := step.Tick, step.Missed
		f = r.fn.Load()
		tick = tick.UTC()
		info := storage.TriggerInfo{Type: storage.EventCron, Index: int(r.index.Load()), Schedule: r.event.Schedule, Tick: &tick, Missed: missed}
		nst := storage.CronState{Module: f.Module, Function: f.Name, LastTick: tick, Missed: st.Missed + int64(missed)}
		id, err := m.cfg.Enqueue(*f, r.event.Args, info, r.key, &nst)
		switch {
		case err == nil:
			retry = 0
			st = nst
			fl.Fired(tick)
			m.count.add(storage.EventCron, resultQueued, 1)
			m.count.add(storage.EventCron, resultMissed, missed)
			if missed > 0 {
				log.Warn("cron trigger missed ticks; ran the latest once", "tick", tick, "missed", missed, "activation", id)
			} else {
				log.Debug("cron tick queued", "tick", tick, "activation", id)
			}
		case errors.Is(err, storage.ErrTickDone):
			if st, err = m.cfg.Store.GetCronState(r.key); err != nil {
				return err
			}
			fl.Last = st.LastTick
		default:
			// The queue is full or stopping: wait and look again; ticks
			// that pass meanwhile are folded into the next run and counted.
			retry++
			m.count.add(storage.EventCron, resultRetried, 1)
			if retry == 1 || retry%10 == 0 {
				log.Warn("cron tick could not be queued; retrying", "tick", tick, "err", err, "tries", retry)
			}
			if !sleep(ctx, backoff(retry)) {
				return errStopped
			}
		}
		if ctx.Err() != nil {
			return errStopped
		}
	}
}

// backoff is 100 ms doubling to 5 s.
func backoff(n int) time.Duration {
	d := 100 * time.Millisecond
	for i := 1; i < n && d < 5*time.Second; i++ {
		d *= 2
	}
	return min(d, 5*time.Second)
}
