package activations

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// TestQueueLimitsData runs the scripts in testdata/: which queued
// activations the queue starts, driven through Submit, pick and release
// with a fixed clock and no dispatch loop (the queue is never started), so
// nothing depends on timing. Commands:
//
//	queue [max-queued=N] [max-in-flight=N] [per-function=N] [per-subject=N]
//	      [max-bytes=N] [subject-bytes=N] [in-flight-bytes=N]
//	                         a new queue (0 or absent: the default)
//	submit ID fn=M/F subject=S [bytes=N]
//	                         queued (with N bytes of args), or the refusal
//	pick [at=SECONDS]        the activations started, oldest first, and the
//	                         earliest time a waiting one becomes runnable
//	release ID [retry-at=SECONDS]
//	                         a started activation ends, or with retry-at
//	                         goes back to wait until then
//	state                    queued and running counts
//	backoff first=D limit=D n=N...  the retry delays
func TestQueueLimitsData(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d *datadriven.TestData, a datadriven.CmdArg) time.Time {
		s, err := strconv.Atoi(a.Vals[0])
		if err != nil {
			d.Fatalf(t, "%s: %v", a.Key, err)
		}
		return base.Add(time.Duration(s) * time.Second)
	}
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		var q *Queue
		started := map[string]*job{}
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "queue":
				var cfg QueueConfig
				for _, a := range d.CmdArgs {
					n, err := strconv.Atoi(a.Vals[0])
					if err != nil {
						d.Fatalf(t, "%s: %v", a.Key, err)
					}
					switch a.Key {
					case "max-queued":
						cfg.MaxQueued = n
					case "max-in-flight":
						cfg.MaxInFlight = n
					case "per-function":
						cfg.PerFunction = n
					case "per-subject":
						cfg.PerSubject = n
					case "max-bytes":
						cfg.MaxQueuedBytes = int64(n)
					case "subject-bytes":
						cfg.PerSubjectQueuedBytes = int64(n)
					case "in-flight-bytes":
						cfg.MaxInFlightBytes = int64(n)
					default:
						d.Fatalf(t, "unknown argument %s", a.Key)
					}
				}
				q = NewQueue(cfg)
				started = map[string]*job{}
				return fmt.Sprintf("max-queued=%d max-in-flight=%d per-function=%d per-subject=%d max-bytes=%d subject-bytes=%d in-flight-bytes=%d",
					q.cfg.MaxQueued, q.cfg.MaxInFlight, q.cfg.PerFunction, q.cfg.PerSubject, q.cfg.MaxQueuedBytes, q.cfg.PerSubjectQueuedBytes, q.cfg.MaxInFlightBytes)
			case "submit":
				rec := storage.Activation{ID: d.CmdArgs[0].Key}
				var call storage.QueuedCall
				for _, a := range d.CmdArgs[1:] {
					switch a.Key {
					case "fn":
						call.Module, call.Function, _ = strings.Cut(a.Vals[0], "/")
					case "subject":
						call.Subject = a.Vals[0]
					case "bytes":
						n, err := strconv.Atoi(a.Vals[0])
						if err != nil {
							d.Fatalf(t, "bytes: %v", err)
						}
						call.Args = make([]byte, n)
					default:
						d.Fatalf(t, "unknown argument %s", a.Key)
					}
				}
				err := q.SubmitWith(rec, call, func(storage.Activation, storage.QueuedCall) error { return nil })
				if err != nil {
					return "error: " + err.Error()
				}
				return "queued"
			case "pick":
				now := base
				for _, a := range d.CmdArgs {
					now = at(d, a)
				}
				batch, next := q.pick(now)
				ids := make([]string, 0, len(batch))
				for _, j := range batch {
					ids = append(ids, j.rec.ID)
					started[j.rec.ID] = j
				}
				out := "started: " + strings.Join(ids, " ")
				if len(ids) == 0 {
					out = "started: none"
				}
				if !next.IsZero() {
					out += fmt.Sprintf("\nnext runnable at %ds", int(next.Sub(base)/time.Second))
				}
				return out
			case "release":
				id := d.CmdArgs[0].Key
				j, ok := started[id]
				if !ok {
					d.Fatalf(t, "%s was not started", id)
				}
				delete(started, id)
				requeue := false
				for _, a := range d.CmdArgs[1:] {
					if a.Key != "retry-at" {
						d.Fatalf(t, "unknown argument %s", a.Key)
					}
					j.notBefore, requeue = at(d, a), true
				}
				q.release(j, requeue)
				return "ok"
			case "state":
				q.mu.Lock()
				defer q.mu.Unlock()
				var waiting []string
				for _, j := range q.waiting {
					waiting = append(waiting, j.rec.ID)
				}
				fns := make([]string, 0, len(q.perFn))
				for k, v := range q.perFn {
					fns = append(fns, fmt.Sprintf("%s:%d", k, v))
				}
				subs := make([]string, 0, len(q.perSub))
				for k, v := range q.perSub {
					subs = append(subs, fmt.Sprintf("%s:%d", k, v))
				}
				if len(waiting) == 0 {
					waiting = []string{"none"}
				}
				slices.Sort(fns)
				slices.Sort(subs)
				bytes := make([]string, 0, len(q.subBytes))
				for k, v := range q.subBytes {
					bytes = append(bytes, fmt.Sprintf("%s:%d", k, v))
				}
				slices.Sort(bytes)
				return fmt.Sprintf("waiting: %s\nrunning: %d (by function %s; by subject %s)\nargs bytes: %d, running %d (by subject %s)",
					strings.Join(waiting, " "), q.inFlight, strings.Join(fns, " "), strings.Join(subs, " "), q.bytes, q.runBytes, strings.Join(bytes, " "))
			case "backoff":
				var first, limit time.Duration
				var out []string
				for _, a := range d.CmdArgs {
					switch a.Key {
					case "first", "limit":
						v, err := time.ParseDuration(a.Vals[0])
						if err != nil {
							d.Fatalf(t, "%s: %v", a.Key, err)
						}
						if a.Key == "first" {
							first = v
						} else {
							limit = v
						}
					case "n":
						for _, s := range a.Vals {
							n, err := strconv.Atoi(s)
							if err != nil {
								d.Fatalf(t, "n: %v", err)
							}
							out = append(out, fmt.Sprintf("%d: %s", n, backoff(first, n, limit)))
						}
					}
				}
				return strings.Join(out, "\n")
			}
			d.Fatalf(t, "unknown command %s", d.Cmd)
			return ""
		})
	})
}
