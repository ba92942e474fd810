package eventspec

import (
	"time"

	"github.com/robfig/cron/v3"
)

// Recheck bounds a cron trigger's sleep: however far its next tick, it
// looks at the clocks again this often, so a step of the wall clock (NTP
// setting the time of a board without a real-time clock) is noticed
// within it.
const Recheck = time.Minute

// maxDrift is how far the wall clock may move against the monotonic one
// between two looks without counting as a step: NTP's slewing is at most
// 0.5 ms per second, 30 ms per Recheck.
const maxDrift = time.Second

// Follower decides when a cron trigger fires, from its schedule, its last
// fired tick, the wall clock (which the schedule is written in) and the
// monotonic clock (which never steps). Its sleeps are monotonic and at
// most Recheck; when the wall clock steps by J between two looks, a last
// tick this process fired or installed moves by J too, so the schedule
// carries on from the last run in real time: a step back does not silence
// the trigger for the size of the step, and a step forward fires no
// catch-up run and counts no tick missed. A last tick read from the
// store, fired under an earlier process's clock, moves only when a step
// back leaves it in the future (the clock it was written under ran ahead
// too); otherwise it stays, so a core that started before NTP set its
// clock runs the ticks due since it, by the corrected clock. Plain
// values, no clock of its own: tests drive it with a fake one.
type Follower struct {
	Schedule cron.Schedule
	// Last is the last tick fired (or the install time): set it after a
	// tick is queued, or to the stored state after a refusal.
	Last time.Time
	// Local says Last was set under this process's wall clock (Fired, or
	// installed now) rather than read from the store.
	Local bool

	looked bool
	wall0  time.Time
	mono0  time.Duration
}

// Step is what a look decided.
type Step struct {
	// Shift is the step of the wall clock seen since the previous look
	// (0: none), and Last has moved by it when Moved.
	Shift time.Duration
	Moved bool
	// Due: Tick runs now, with Missed earlier ticks folded into it.
	Due    bool
	Tick   time.Time
	Missed int
	// Wait is how long to sleep (monotonic) before the next look when
	// nothing is due.
	Wait time.Duration
}

// Look decides at wall time wall and monotonic reading mono (any origin,
// the same for every look).
func (f *Follower) Look(wall time.Time, mono time.Duration) Step {
	var st Step
	if f.looked {
		j := wall.Sub(f.wall0) - (mono - f.mono0)
		if j > maxDrift || j < -maxDrift {
			st.Shift = j
			if f.Local || j < 0 && f.Last.After(wall) {
				f.Last = f.Last.Add(j)
				st.Moved = true
			}
		}
	}
	f.looked, f.wall0, f.mono0 = true, wall, mono
	tick, missed, next, ok := Due(f.Schedule, f.Last, wall)
	if ok {
		st.Due, st.Tick, st.Missed = true, tick, missed
		return st
	}
	st.Wait = Recheck
	if !next.IsZero() {
		st.Wait = min(max(next.Sub(wall), 0), Recheck)
	}
	return st
}

// Fired records that tick was queued.
func (f *Follower) Fired(tick time.Time) { f.Last, f.Local = tick, true }
