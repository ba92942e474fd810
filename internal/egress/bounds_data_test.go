package egress

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestBoundsData runs testdata/bounds: the per-subject bound (Bound,
// Permits, Intersect) against an operator's bounds kept in a map, as the
// store keeps them. Commands:
//
//	set-bound SUBJECT      the input, one pattern a line, is SUBJECT's bound
//	                       (empty input: a bound that permits nothing)
//	clear-bound SUBJECT    SUBJECT has no bound
//	fail-lookup SUBJECT    looking SUBJECT's bound up fails
//	bound SUBJECT [nolookup]
//	                       the input, one pattern a line, is a function's
//	                       allowed_hosts: what Bound leaves of them
//	permits SUBJECT [nolookup]
//	                       the input is one URL a line: Permits' answer
//	intersect              the input is two patterns a line: Intersect's
func TestBoundsData(t *testing.T) {
	bounds := map[string][]string{}
	failing := map[string]bool{}
	lookup := func(s string) ([]string, bool, error) {
		if failing[s] {
			return nil, false, errors.New("store unavailable")
		}
		h, ok := bounds[s]
		return h, ok, nil
	}
	lines := func(in string) []string {
		out := []string{}
		for _, l := range strings.Split(in, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				out = append(out, l)
			}
		}
		return out
	}
	datadriven.RunTest(t, "testdata/bounds", func(t *testing.T, d *datadriven.TestData) string {
		var subject string
		lk := Lookup(lookup)
		for i, a := range d.CmdArgs {
			switch {
			case i == 0 && d.Cmd != "intersect":
				subject = a.Key
			case a.Key == "nolookup":
				lk = nil
			default:
				d.Fatalf(t, "unknown argument %s", a.Key)
			}
		}
		switch d.Cmd {
		case "set-bound":
			bounds[subject] = lines(d.Input)
			delete(failing, subject)
			return "ok"
		case "clear-bound":
			delete(bounds, subject)
			delete(failing, subject)
			return "ok"
		case "fail-lookup":
			failing[subject] = true
			return "ok"
		case "bound":
			got, err := Bound(lk, subject, lines(d.Input))
			if err != nil {
				return "error: " + err.Error()
			}
			if len(got) == 0 {
				return "(nothing)"
			}
			return strings.Join(got, "\n")
		case "permits":
			var b strings.Builder
			for _, u := range lines(d.Input) {
				err := Permits(lk, subject, u)
				switch {
				case err == nil:
					fmt.Fprintf(&b, "%s: permitted\n", u)
				case errors.Is(err, ErrHostNotAllowed):
					fmt.Fprintf(&b, "%s: not allowed: %v\n", u, err)
				case errors.Is(err, ErrBadRequest):
					fmt.Fprintf(&b, "%s: bad request: %v\n", u, err)
				default:
					fmt.Fprintf(&b, "%s: error: %v\n", u, err)
				}
			}
			return b.String()
		case "intersect":
			var b strings.Builder
			for _, l := range lines(d.Input) {
				f := strings.Fields(l)
				if len(f) != 2 {
					d.Fatalf(t, "intersect: want two patterns, got %q", l)
				}
				got := strings.Join(Intersect([]string{f[0]}, []string{f[1]}), " ")
				if got == "" {
					got = "(none)"
				}
				fmt.Fprintf(&b, "%s ∩ %s = %s\n", f[0], f[1], got)
			}
			return b.String()
		}
		d.Fatalf(t, "unknown command %s", d.Cmd)
		return ""
	})
}
