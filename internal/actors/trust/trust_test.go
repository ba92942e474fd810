package trust

import (
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestCores: a worker takes commands from its own node, the cores it was
// given and those added since; not from any other node, whatever its name.
func TestCores(t *testing.T) {
	c := NewCores("worker@a", []string{"core@x"})
	for node, want := range map[string]bool{"worker@a": true, "core@x": true, "core@y": false, "worker@b": false, "": false} {
		if got := c.Has(node); got != want {
			t.Errorf("Has(%q) = %v, want %v", node, got, want)
		}
	}
	c.Add("edge-core@y")
	if !c.Has("edge-core@y") {
		t.Error("an added core is not trusted")
	}
	for name, want := range map[string]bool{"core@y": true, "core2@y": true, "worker@core": false, "xcore@y": false, "core": false} {
		if CoreRole(name) != want {
			t.Errorf("CoreRole(%q) = %v, want %v", name, !want, want)
		}
	}
}

// TestRefusalsExported: refusals are one metric family beside the links'
// count, and gather without a registry error.
func TestRefusalsExported(t *testing.T) {
	r := NewRefusals(slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.Refuse("result", WrongSender, "worker@b")
	r.Refuse("result", WrongSender, "worker@b")
	r.Refuse("cache", NotACore, "worker@b")
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(r)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "edgefaas_cluster_refused_messages_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetValue())
			}
			got[strings.Join(labels, "/")] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"any/foreign_sender": 0, "cache/not_a_core": 1, "result/wrong_sender": 2}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if r.Count("result", WrongSender) != 2 {
		t.Fatal("Count disagrees")
	}
	var nilR *Refusals
	nilR.Refuse("x", NotACore, "y") // nil counts nothing, never panics
}
