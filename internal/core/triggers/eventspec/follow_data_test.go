package eventspec

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// TestFollowData runs testdata/follow: a cron trigger's Follower driven by
// a fake clock (a wall clock and a monotonic one), as runCron drives it
// with the real ones: look, fire what is due, sleep the wait. Commands:
//
//	follow last=T now=T [local]
//	                the input is the schedule; a follower whose last tick
//	                is last (set by this process with local, else read
//	                from the store), the wall clock at now
//	run for=D       the clocks advance D (Go duration) by the follower's
//	                waits; each tick fired, and each step of the wall clock
//	                seen, is a line
//	jump by=D | jump to=T
//	                the wall clock steps; the monotonic one does not
func TestFollowData(t *testing.T) {
	var (
		f    *Follower
		wall time.Time
		mono time.Duration
	)
	parse := func(d *datadriven.TestData, v string) time.Time {
		tm, err := time.Parse(time.RFC3339, v)
		if err != nil {
			d.Fatalf(t, "%s: %v", v, err)
		}
		return tm
	}
	dur := func(d *datadriven.TestData, v string) time.Duration {
		x, err := time.ParseDuration(v)
		if err != nil {
			d.Fatalf(t, "%s: %v", v, err)
		}
		return x
	}
	datadriven.RunTest(t, "testdata/follow", func(t *testing.T, d *datadriven.TestData) string {
		switch d.Cmd {
		case "follow":
			s, err := ParseSchedule(strings.TrimSpace(d.Input))
			if err != nil {
				return "error: " + err.Error()
			}
			f, mono = &Follower{Schedule: s}, 0
			for _, a := range d.CmdArgs {
				switch a.Key {
				case "last":
					f.Last = parse(d, a.Vals[0])
				case "now":
					wall = parse(d, a.Vals[0])
				case "local":
					f.Local = true
				default:
					d.Fatalf(t, "unknown argument %s", a.Key)
				}
			}
			return "ok"
		case "jump":
			for _, a := range d.CmdArgs {
				switch a.Key {
				case "by":
					wall = wall.Add(dur(d, a.Vals[0]))
				case "to":
					wall = parse(d, a.Vals[0])
				default:
					d.Fatalf(t, "unknown argument %s", a.Key)
				}
			}
			return "wall clock " + format(wall)
		case "run":
			var span time.Duration
			d.ScanArgs(t, "for", new(string))
			for _, a := range d.CmdArgs {
				span = dur(d, a.Vals[0])
			}
			end := mono + span
			var out []string
			for looks := 0; ; looks++ {
				if looks > 100000 {
					d.Fatalf(t, "the follower does not advance")
				}
				st := f.Look(wall, mono)
				if st.Shift != 0 {
					kept := "kept"
					if st.Moved {
						kept = "moved"
					}
					out = append(out, fmt.Sprintf("at %s: the wall clock stepped %s; last tick %s, %s", format(wall), st.Shift, kept, format(f.Last)))
				}
				if st.Due {
					out = append(out, fmt.Sprintf("at %s: fire %s, missed %d", format(wall), format(st.Tick), st.Missed))
					f.Fired(st.Tick)
					continue
				}
				if st.Wait <= 0 || st.Wait > Recheck {
					d.Fatalf(t, "wait %s out of (0, %s]", st.Wait, Recheck)
				}
				if mono >= end {
					break
				}
				step := min(st.Wait, end-mono)
				wall, mono = wall.Add(step), mono+step
			}
			out = append(out, fmt.Sprintf("fired %d", countFires(out)))
			return strings.Join(out, "\n")
		}
		d.Fatalf(t, "unknown command %s", d.Cmd)
		return ""
	})
}

func countFires(lines []string) int {
	n := 0
	for _, l := range lines {
		if strings.Contains(l, ": fire ") {
			n++
		}
	}
	return n
}
