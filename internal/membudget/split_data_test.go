package membudget

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestData runs the scripts in testdata/. Commands:
//
//	split budget=SIZE role=core|worker|single
//	                 how Split shares the budget, and what follows from it
//	parse-size       the input is one text a line (a line "" is the empty
//	                 text): ParseSize's answer
func TestData(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "split":
				var b Budget
				var role Role
				for _, a := range d.CmdArgs {
					switch a.Key {
					case "budget":
						n, err := ParseSize(a.Vals[0])
						if err != nil {
							d.Fatalf(t, "budget: %v", err)
						}
						b.Bytes = n
					case "role":
						role = map[string]Role{"core": Core, "worker": Worker, "single": SingleBox}[a.Vals[0]]
					default:
						d.Fatalf(t, "unknown argument %s", a.Key)
					}
				}
				if role == 0 {
					d.Fatalf(t, "split: role core, worker or single")
				}
				s := b.Split(role)
				return fmt.Sprintf("machinery %s\nstore %s (pebble cache %s, memtable %s)\nvalidator %s (%d × %s)\nguests %s (code %s)\nprocess %s (go heap %s)\n",
					FormatSize(s.Machinery), FormatSize(s.Store), FormatSize(s.PebbleCache()), FormatSize(s.PebbleMemTable()),
					FormatSize(s.Validator), s.ValidatorConcurrency, FormatSize(ValidatorChild),
					FormatSize(s.Guests), FormatSize(s.Code()), FormatSize(s.Process()), FormatSize(s.GoHeap()))
			case "parse-size":
				var out strings.Builder
				for _, l := range strings.Split(d.Input, "\n") {
					if l == `""` {
						l = ""
					}
					n, err := ParseSize(l)
					switch {
					case err == nil:
						fmt.Fprintf(&out, "%q: %d (%s)\n", l, n, FormatSize(n))
					case errors.Is(err, ErrSize):
						fmt.Fprintf(&out, "%q: error: %v\n", l, err)
					default:
						d.Fatalf(t, "ParseSize(%q): %v is not ErrSize", l, err)
					}
				}
				return out.String()
			}
			d.Fatalf(t, "unknown command %s", d.Cmd)
			return ""
		})
	})
}
