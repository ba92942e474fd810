package supervisors

import (
	"testing"

	"github.com/ergo-services/ergo/gen"
)

// TestOverflowFallbacks: every actor of both trees that receives requests
// falls back to an overflow answerer when its mailbox is full; a child
// named N_overflow is N's fallback.
func TestOverflowFallbacks(t *testing.T) {
	b := &gen.Server{}
	core := Core(b, b, Child{Name: "invoker_overflow", Behavior: b}, []Child{{Name: "invoker_0", Behavior: b}},
		Child{Name: "scheduler_overflow", Behavior: b}, Child{Name: "registry_overflow", Behavior: b})
	worker := Worker(WorkerActors{RunnerOverflow: b, Cache: b, Runner: b, Reporter: b, HTTPClient: b, HTTPOverflow: b},
		Child{Name: "cache_overflow", Behavior: b})
	want := map[string]string{
		"scheduler": "scheduler_overflow", "registry": "registry_overflow", "invoker_0": "invoker_overflow",
		"runner": "runner_overflow", "httpclient": "httpclient_overflow", "cache": "cache_overflow",
	}
	for _, app := range []*App{core, worker} {
		spec, err := app.Top.Init()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range spec.Children {
			if w, ok := want[c.Name]; ok {
				if c.Options.Fallback.Name != w {
					t.Errorf("%s falls back to %q, want %q", c.Name, c.Options.Fallback.Name, w)
				}
				delete(want, c.Name)
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("children missing: %v", want)
	}
}
