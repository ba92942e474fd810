package api

import (
	"testing"
	"time"
)

// TestRefusalPace: a subject's first refusal is answered at once, one
// within refusalHold of its last waits refusalHold, another subject's
// first is not held by it, and a subject refused again only after
// refusalHold is answered at once again.
func TestRefusalPace(t *testing.T) {
	var p refusalPace
	t0 := time.Unix(1000, 0)
	steps := []struct {
		who  string
		at   time.Duration
		want time.Duration
	}{
		{"flooder", 0, 0},
		{"flooder", 10 * time.Millisecond, refusalHold},
		{"neighbour", 20 * time.Millisecond, 0},
		{"flooder", 500 * time.Millisecond, refusalHold},
		{"flooder", 500*time.Millisecond + refusalHold, 0},
		{"neighbour", 3 * refusalHold, 0},
	}
	for i, s := range steps {
		if got := p.due(s.who, t0.Add(s.at)); got != s.want {
			t.Errorf("step %d: %s refused at +%s waits %s, want %s", i, s.who, s.at, got, s.want)
		}
	}
	if len(p.last) != 1 {
		t.Errorf("%d subjects remembered after the others' refusals are a refusalHold old, want 1 (the last refused)", len(p.last))
	}
}
