package eventspec

import (
	"fmt"
	"testing"
	"time"
	_ "time/tzdata" // the CRON_TZ case must not depend on the host's zoneinfo

	"github.com/cockroachdb/datadriven"
	"github.com/robfig/cron/v3"
)

// TestDueData runs testdata/due: which cron tick runs now (Due). Commands:
//
//	schedule        the input is a cron expression, as ParseSchedule takes it
//	due last=T now=T
//	                T is RFC 3339; the tick to run, the ticks folded into
//	                it and the next one, or "not due" and the next tick
func TestDueData(t *testing.T) {
	var s cron.Schedule
	datadriven.RunTest(t, "testdata/due", func(t *testing.T, d *datadriven.TestData) string {
		switch d.Cmd {
		case "schedule":
			var err error
			if s, err = ParseSchedule(d.Input); err != nil {
				s = nil
				return "error: " + err.Error()
			}
			return "ok"
		case "due":
			if s == nil {
				d.Fatalf(t, "no schedule")
			}
			var last, now time.Time
			for _, a := range d.CmdArgs {
				v, err := time.Parse(time.RFC3339, a.Vals[0])
				if err != nil {
					d.Fatalf(t, "%s: %v", a.Key, err)
				}
				switch a.Key {
				case "last":
					last = v
				case "now":
					now = v
				default:
					d.Fatalf(t, "unknown argument %s", a.Key)
				}
			}
			tick, missed, next, ok := Due(s, last, now)
			if !ok {
				return "not due, next " + format(next)
			}
			return fmt.Sprintf("run %s, missed %d, next %s", format(tick), missed, format(next))
		}
		d.Fatalf(t, "unknown command %s", d.Cmd)
		return ""
	})
}

func format(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format(time.RFC3339)
}
