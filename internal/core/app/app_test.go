package app

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestData runs the scripts in testdata/ (cockroachdb/datadriven, as
// pebble's tests do). Commands:
//
//	parse             the input is a YAML script: its normalised JSON, or the error
//	workers           the input is one worker a line:
//	                  NAME total=MiB free=MiB concurrent=N tags=a,b,a
//	select tag=T need=MiB [repeat=N]  (without repeat, random draws 0)
//	                  the choice for a call; repeat draws N times with a
//	                  seeded random source and lists the workers chosen
func TestData(t *testing.T) {
	datadriven.Walk(t, "testdata", func(t *testing.T, path string) {
		var script *Script
		var workers []Worker
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "parse":
				s, err := Parse([]byte(d.Input))
				if err != nil {
					script = nil
					var se *SyntaxError
					if !errors.As(err, &se) {
						t.Fatalf("Parse error is %T, not a *SyntaxError", err)
					}
					return "error: " + err.Error()
				}
				b, err := json.MarshalIndent(s, "", "  ")
				if err != nil {
					t.Fatal(err)
				}
				// The stored form decodes back to the same script.
				back, err := Decode(b)
				if err != nil {
					t.Fatalf("Decode of Parse's output: %v", err)
				}
				if again, _ := json.MarshalIndent(back, "", "  "); string(again) != string(b) {
					t.Fatalf("Decode(Marshal(s)) differs:\n%s\n%s", again, b)
				}
				script = s
				return string(b)
			case "workers":
				workers = nil
				for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
					f := strings.Fields(line)
					if len(f) == 0 {
						continue
					}
					w := Worker{Name: f[0], Tags: map[string]int{}}
					for _, kv := range f[1:] {
						k, v, _ := strings.Cut(kv, "=")
						var n int
						switch k {
						case "total":
							fmt.Sscan(v, &n)
							w.TotalMemory = n << 20
						case "free":
							fmt.Sscan(v, &n)
							w.FreeMemory = n << 20
						case "concurrent":
							fmt.Sscan(v, &w.Concurrent)
						case "tags":
							for _, tg := range strings.Split(v, ",") {
								w.Tags[tg]++
							}
						default:
							t.Fatalf("unknown worker field %q", k)
						}
					}
					workers = append(workers, w)
				}
				return fmt.Sprintf("%d workers", len(workers))
			case "select":
				if script == nil {
					t.Fatal("select without a parsed script")
				}
				var c Call
				var need, repeat int
				d.MaybeScanArgs(t, "tag", &c.Tag)
				d.MaybeScanArgs(t, "need", &need)
				d.MaybeScanArgs(t, "repeat", &repeat)
				c.MemoryBytes = need << 20
				if repeat == 0 {
					ch, err := script.Select(c, slices.Clone(workers), func(int) int { return 0 }) // random: the first valid
					return describeChoice(ch, err)
				}
				rng := rand.New(rand.NewPCG(1, 2))
				seen := map[string]int{}
				for range repeat {
					ch, err := script.Select(c, slices.Clone(workers), rng.IntN)
					seen[describeChoice(ch, err)]++
				}
				keys := make([]string, 0, len(seen))
				for k := range seen {
					keys = append(keys, k)
				}
				slices.Sort(keys)
				return strings.Join(keys, "\n")
			}
			t.Fatalf("unknown command %q", d.Cmd)
			return ""
		})
	})
}

func describeChoice(ch Choice, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	if ch.Platform {
		if ch.Among == nil {
			return fmt.Sprintf("platform policy over every worker (tag %s followup)", ch.Tag)
		}
		return fmt.Sprintf("platform policy among %s (tag %s, block %d)", strings.Join(ch.Among, ","), ch.Tag, ch.Block)
	}
	return fmt.Sprintf("%s (tag %s, block %d)", ch.Worker, ch.Tag, ch.Block)
}
