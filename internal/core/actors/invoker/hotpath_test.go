package invoker

import (
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

// The per-request fixed work of the invocation path that does not need a
// node: the router's name and the metrics. Run with -benchmem: the
// allocations per request are the point (docs/RATIONALE.md#the-one-step-answer-path).

func BenchmarkRouterName(b *testing.B) {
	b.ReportAllocs()
	for i := range b.N {
		if RouterName(i%16) == "" {
			b.Fatal("empty name")
		}
	}
}

func BenchmarkMetricsObserve(b *testing.B) {
	m := NewMetrics()
	start := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.observe("ok", start)
		}
	})
}

// TestRouterName keeps the registered names what the supervisor registers.
func TestRouterName(t *testing.T) {
	for _, c := range []struct {
		i    int
		want string
	}{{0, "invoker_0"}, {7, "invoker_7"}, {63, "invoker_63"}, {64, "invoker_64"}, {1000, "invoker_1000"}} {
		if got := RouterName(c.i); got != c.want {
			t.Errorf("RouterName(%d) = %q, want %q", c.i, got, c.want)
		}
	}
}

// TestMetricsObserve checks the resolved handles count where the labels say.
func TestMetricsObserve(t *testing.T) {
	m := NewMetrics()
	start := time.Now()
	m.observe("ok", start)
	m.observe("ok", start)
	m.observe("timeout", start)
	m.observe("surprise", start) // not a known result: still counted under its label
	m.retried("busy")
	for _, c := range []struct {
		label string
		want  float64
	}{{"ok", 2}, {"timeout", 1}, {"surprise", 1}, {"busy", 0}} {
		if got := counterValue(t, m, c.label); got != c.want {
			t.Errorf("invocations{result=%q} = %v, want %v", c.label, got, c.want)
		}
	}
}
func counterValue(t *testing.T, m *Metrics, result string) float64 {
	t.Helper()
	var out dto.Metric
	if err := m.invocations.WithLabelValues(result).Write(&out); err != nil {
		t.Fatal(err)
	}
	return out.GetCounter().GetValue()
}
