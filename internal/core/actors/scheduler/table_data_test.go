package scheduler

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/edgefaas/edgefaas/internal/actors/wire"
	"github.com/edgefaas/edgefaas/internal/core/app"
)

// TestTableData drives a Table through the scripts in testdata/ (one table
// per file; memory figures in MiB). Commands:
//
//	report NODE [free=MiB] [total=MiB] [running=N] [queued=N] [max=N]
//	       [tags=a,b] [arch=A] [os=O] [cached=h1,h2]
//	                 a worker's report (total defaults to free): new or updated
//	pick|place [hash=H] [mem=MiB] [tag=T] [exclude=a,b] [only=a,b] [script]
//	                 the chosen worker and whether it has the version
//	                 compiled, or "no worker"; place also counts the call
//	                 in flight, and with script places by the last script
//	start|finish NODE [tag=T] [n=N]   count calls in flight (n times)
//	mark-cached NODE HASH
//	remove NODE
//	workers          each worker's load as the table sees it
//	script           the input is an APP script (deterministic strategies
//	                 only: random draws are not seeded here)
func TestTableData(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		tab := NewTable()
		var script *app.Script
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "report":
				r := wire.Report{Node: d.CmdArgs[0].Key}
				total := -1
				for _, a := range d.CmdArgs[1:] {
					switch a.Key {
					case "free":
						r.FreeMemory = mib(t, d, a)
					case "total":
						total = mib(t, d, a)
					case "running":
						r.Running = num(t, d, a)
					case "queued":
						r.Queued = num(t, d, a)
					case "max":
						r.MaxRunning = num(t, d, a)
					case "tags":
						r.Tags = wire.JoinList(a.Vals)
					case "arch":
						r.Arch = a.Vals[0]
					case "os":
						r.OS = a.Vals[0]
					case "cached":
						r.Cached = wire.JoinList(a.Vals)
					default:
						d.Fatalf(t, "report: unknown argument %s", a.Key)
					}
				}
				r.TotalMemory = r.FreeMemory
				if total >= 0 {
					r.TotalMemory = total
				}
				if tab.Update(r) {
					return "new"
				}
				return "updated"
			case "pick", "place":
				n, useScript := need(t, d)
				if useScript {
					if script == nil {
						d.Fatalf(t, "no script given")
					}
					n.Script = script
				}
				if d.Cmd == "pick" {
					node, cached, ok := tab.Pick(n)
					if !ok {
						return "no worker"
					}
					return fmt.Sprintf("%s cached=%v", node, cached)
				}
				node, ok, err := tab.Place(n)
				switch {
				case err != nil:
					return "error: " + err.Error()
				case !ok:
					return "no worker"
				}
				return node
			case "start", "finish":
				var tag string
				times := 1
				for _, a := range d.CmdArgs[1:] {
					switch a.Key {
					case "tag":
						tag = a.Vals[0]
					case "n":
						times = num(t, d, a)
					}
				}
				for range times {
					if d.Cmd == "start" {
						tab.Start(d.CmdArgs[0].Key, tag)
					} else {
						tab.Finish(d.CmdArgs[0].Key, tag)
					}
				}
				return "ok"
			case "mark-cached":
				tab.MarkCached(d.CmdArgs[0].Key, d.CmdArgs[1].Key)
				return "ok"
			case "remove":
				if tab.Remove(d.CmdArgs[0].Key) {
					return "removed"
				}
				return "unknown"
			case "workers":
				var b strings.Builder
				for _, w := range tab.Workers() {
					fmt.Fprintf(&b, "%s: free=%d total=%d running=%d queued=%d max=%d in_flight=%d functions=%s\n",
						w.Node, w.FreeMemory>>20, w.TotalMemory>>20, w.Running, w.Queued, w.MaxRunning, w.InFlight,
						strings.Join(w.Functions, ","))
				}
				if b.Len() == 0 {
					return "none"
				}
				return b.String()
			case "script":
				s, err := app.Parse([]byte(d.Input))
				if err != nil {
					d.Fatalf(t, "script: %v", err)
				}
				script = s
				return "ok"
			}
			d.Fatalf(t, "unknown command %s", d.Cmd)
			return ""
		})
	})
}

func need(t *testing.T, d *datadriven.TestData) (n Need, script bool) {
	set := func(vals []string) map[string]bool {
		m := map[string]bool{}
		for _, v := range vals {
			m[v] = true
		}
		return m
	}
	for _, a := range d.CmdArgs {
		switch a.Key {
		case "hash":
			n.Hash = a.Vals[0]
		case "mem":
			n.MemoryBytes = mib(t, d, a)
		case "tag":
			n.Tag = a.Vals[0]
		case "exclude":
			n.Exclude = set(a.Vals)
		case "only":
			n.Only = set(a.Vals)
		case "script":
			script = true
		default:
			d.Fatalf(t, "%s: unknown argument %s", d.Cmd, a.Key)
		}
	}
	return n, script
}

func num(t *testing.T, d *datadriven.TestData, a datadriven.CmdArg) int {
	v, err := strconv.Atoi(a.Vals[0])
	if err != nil {
		d.Fatalf(t, "%s: %v", a.Key, err)
	}
	return v
}

func mib(t *testing.T, d *datadriven.TestData, a datadriven.CmdArg) int { return num(t, d, a) << 20 }
