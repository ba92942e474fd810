package triggers

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// Trigger outcomes counted in edgefaas_trigger_events_total.
const (
	resultQueued  = "queued"  // an activation was queued
	resultRetried = "retried" // the queue refused it for now
	resultDropped = "dropped" // never queued: too large, or the owner revoked
	resultMissed  = "missed"  // cron ticks folded into a later run
)

var (
	descTriggers = prometheus.NewDesc("edgefaas_triggers", "Triggers running on this core, by type.", []string{"type"}, nil)
	descEvents   = prometheus.NewDesc("edgefaas_trigger_events_total", "Trigger firings (MQTT messages, cron ticks) by type and result (queued, retried, dropped, missed).", []string{"type", "result"}, nil)
)

// counters are the manager's event counts: two types × four results.
type counters struct {
	n [2][4]atomic.Int64
}

func typeIndex(t string) int {
	if t == storage.EventMQTT {
		return 0
	}
	return 1
}

var results = []string{resultQueued, resultRetried, resultDropped, resultMissed}

func (c *counters) add(typ, result string, n int) {
	for i, r := range results {
		if r == result {
			c.n[typeIndex(typ)][i].Add(int64(n))
		}
	}
}

// Describe implements prometheus.Collector.
func (m *Manager) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTriggers
	ch <- descEvents
}

// Collect implements prometheus.Collector.
func (m *Manager) Collect(ch chan<- prometheus.Metric) {
	running := map[string]int{storage.EventMQTT: 0, storage.EventCron: 0}
	m.mu.Lock()
	for _, rs := range m.fns {
		for _, r := range rs {
			running[r.event.Type]++
		}
	}
	m.mu.Unlock()
	for _, typ := range []string{storage.EventMQTT, storage.EventCron} {
		ch <- prometheus.MustNewConstMetric(descTriggers, prometheus.GaugeValue, float64(running[typ]), typ)
		for i, r := range results {
			ch <- prometheus.MustNewConstMetric(descEvents, prometheus.CounterValue, float64(m.count.n[typeIndex(typ)][i].Load()), typ, r)
		}
	}
}
