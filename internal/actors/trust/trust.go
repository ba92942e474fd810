// Package trust checks cluster messages against the node that sent them,
// never against what their body says: a worker's answer is taken only from
// the worker the call went to, a report only for the node it came from,
// and a worker takes commands only from its cores. Every refusal is
// counted (Refusals) by message and reason.
//
// The sender is the one ergo hands a process's Receive (patch 0003), the
// node of the sending process; the link it arrived on vouches for it
// (ergo patch 0005 drops a message whose sender names another node than
// the link's peer), and the link's peer is who its certificate names.
package trust

import (
	"log/slog"
	"strings"
	"sync"

	"github.com/ergo-services/ergo/gen"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Reasons a message is refused (the metric's reason label).
const (
	// WrongSender: the message speaks for another node than the one
	// that sent it (an answer to a call sent elsewhere, a report naming
	// another worker).
	WrongSender = "wrong_sender"
	// NotACore: a command to a worker from a node that is not one of its
	// cores.
	NotACore = "not_a_core"
	// Unverified: the message reached a path that does not know its
	// sender, where it is never taken.
	Unverified = "unverified"
	// ForeignSender: a link dropped the message because it named a
	// process of another node than the link's peer as its sender (ergo
	// patch 0005); counted for every kind of message as message "any".
	ForeignSender = "foreign_sender"
)

const (
	metricName = "edgefaas_cluster_refused_messages_total"
	metricHelp = "Cluster messages refused because of the node that sent them, by message and reason."
)

// descForeign is the links' count (ergo patch 0005), in the same family.
var descForeign = prometheus.NewDesc(metricName, metricHelp, []string{"message", "reason"}, nil)

// Refusals counts refused cluster messages; its methods are safe on nil
// (nothing counted) for actors built without one in unit tests.
type Refusals struct {
	vec    *prometheus.CounterVec
	log    *slog.Logger
	warned sync.Map // sender node → true: each sender is logged once at Warn
}

// NewRefusals returns a counter for one node; log may be nil.
func NewRefusals(log *slog.Logger) *Refusals {
	if log == nil {
		log = slog.Default()
	}
	return &Refusals{log: log, vec: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: metricName, Help: metricHelp,
	}, []string{"message", "reason"})}
}

// Refuse counts one refused message of kind message (e.g. "result") from
// node from. The first refusal of a sender is logged at Warn, later ones at
// Debug: a hostile peer cannot flood the log.
func (r *Refusals) Refuse(message, reason, from string) {
	if r == nil {
		return
	}
	r.vec.WithLabelValues(message, reason).Inc()
	if _, seen := r.warned.LoadOrStore(from, true); !seen {
		r.log.Warn("cluster message refused: its sender may not send it", "message", message, "reason", reason, "from", from)
		return
	}
	r.log.Debug("cluster message refused", "message", message, "reason", reason, "from", from)
}

// Count is how many messages of kind message were refused for reason.
func (r *Refusals) Count(message, reason string) float64 {
	if r == nil {
		return 0
	}
	var m dto.Metric
	if err := r.vec.WithLabelValues(message, reason).Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}

// Describe implements prometheus.Collector.
func (r *Refusals) Describe(ch chan<- *prometheus.Desc) { r.vec.Describe(ch) }

// Collect implements prometheus.Collector: the actors' refusals and the
// messages the node's links dropped (one count per process: a process
// runs one node).
func (r *Refusals) Collect(ch chan<- prometheus.Metric) {
	r.vec.Collect(ch)
	ch <- prometheus.MustNewConstMetric(descForeign, prometheus.CounterValue,
		float64(gen.EdgefaasForeignSenders.Load()), "any", ForeignSender)
}

// CoreRole reports whether a node's name carries the core role: its role
// (the part before "@") starts with "core", as a core's name does
// ("core@HOST", or a second core's "core2@HOST"). A worker's may not (a
// join token never buys such a name).
func CoreRole(node string) bool {
	role, _, ok := strings.Cut(node, "@")
	return ok && strings.HasPrefix(role, "core")
}

// Cores is the set of nodes a worker takes commands from: its own node
// (a single box's core shares it), the cores it was started with, and the
// cores that attached it since (Add).
type Cores struct {
	local string
	m     sync.Map
}

// NewCores returns the set for a worker on node local reporting to cores.
func NewCores(local string, cores []string) *Cores {
	c := &Cores{local: local}
	for _, n := range cores {
		c.Add(n)
	}
	return c
}

// Add makes node one of the worker's cores.
func (c *Cores) Add(node string) { c.m.Store(node, true) }

// Has reports whether node is this node or one of its cores. A nil set
// has every node (actors built without one in unit tests).
func (c *Cores) Has(node string) bool {
	if c == nil {
		return true
	}
	if node == c.local {
		return true
	}
	_, ok := c.m.Load(node)
	return ok
}

// Local is the worker's own node.
func (c *Cores) Local() string {
	if c == nil {
		return ""
	}
	return c.local
}
