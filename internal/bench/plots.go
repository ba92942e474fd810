package bench

import (
	"encoding/json"
	"fmt"
	"image/color"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// One color per target (and per process for RSS), stable across plots.
var palette = []color.Color{
	color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, // red
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, // blue
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, // green
	color.RGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}, // purple
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, // orange
	color.RGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff}, // brown
}

func addLine(p *plot.Plot, i int, name string, xy plotter.XYs) error {
	l, err := plotter.NewLine(xy)
	if err != nil {
		return err
	}
	l.Color = palette[i%len(palette)]
	l.Width = vg.Points(1.5)
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}

// cdfPlot draws the latency CDF of every target for one workload (log x).
func cdfPlot(dir, file, title string, ss []Summary) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "latency (ms, log scale)"
	p.Y.Label.Text = "fraction of requests"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Min, p.Y.Max = 0, 1
	p.Legend.Top = false
	p.Legend.Left = false
	p.Add(plotter.NewGrid())
	any := false
	for i, s := range ss {
		n := len(s.latencies)
		if n == 0 {
			continue
		}
		step := max(1, n/2000)
		var xy plotter.XYs
		for k := 0; k < n; k += step {
			xy = append(xy, plotter.XY{X: max(us(s.latencies[k])/1000, 0.001), Y: float64(k+1) / float64(n)})
		}
		xy = append(xy, plotter.XY{X: max(us(s.latencies[n-1])/1000, 0.001), Y: 1})
		if err := addLine(p, i, s.Target, xy); err != nil {
			return err
		}
		any = true
	}
	if !any {
		return nil
	}
	return p.Save(7*vg.Inch, 4*vg.Inch, filepath.Join(dir, file))
}

// rssPlot draws RSS over time of every process in the memory run.
func rssPlot(dir, file string, ms []MemorySeries, seconds float64) error {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("RSS during the hello memory run (4 threads, %.0f s)", seconds)
	p.X.Label.Text = "time (s)"
	p.Y.Label.Text = "RSS (MiB)"
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	top := 0.0
	for _, m := range ms {
		for _, v := range m.RSSMiB {
			top = max(top, v)
		}
	}
	p.Y.Max = top * 1.4 // room for the legend above the lines
	for i, m := range ms {
		var xy plotter.XYs
		for k := range m.Seconds {
			xy = append(xy, plotter.XY{X: m.Seconds[k], Y: m.RSSMiB[k]})
		}
		if len(xy) == 0 {
			continue
		}
		if err := addLine(p, i, m.Target+" "+m.Process, xy); err != nil {
			return err
		}
	}
	return p.Save(7*vg.Inch, 4*vg.Inch, filepath.Join(dir, file))
}

// sustainedPlot draws throughput and p99 per slice, and RSS.
func sustainedPlot(dir string, sl []SustainedSlice) error {
	if len(sl) == 0 {
		return nil
	}
	mk := func(file, title, ylabel string, series map[string]func(SustainedSlice) float64, order []string) error {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = "time (s)"
		p.Y.Label.Text = ylabel
		p.Y.Min = 0
		p.Legend.Top = false
		p.Legend.Left = true
		p.Add(plotter.NewGrid())
		for i, name := range order {
			var xy plotter.XYs
			for _, s := range sl {
				xy = append(xy, plotter.XY{X: s.EndS, Y: series[name](s)})
			}
			if err := addLine(p, i, name, xy); err != nil {
				return err
			}
		}
		return p.Save(7*vg.Inch, 3.5*vg.Inch, filepath.Join(dir, file))
	}
	if err := mk("sustained-throughput.png", "sustained hello, 16 connections: throughput per slice", "req/s",
		map[string]func(SustainedSlice) float64{"req/s": func(s SustainedSlice) float64 { return s.Summary.Throughput }}, []string{"req/s"}); err != nil {
		return err
	}
	if err := mk("sustained-p99.png", "sustained hello: latency per slice", "ms",
		map[string]func(SustainedSlice) float64{
			"p50": func(s SustainedSlice) float64 { return s.Summary.P50 / 1000 },
			"p99": func(s SustainedSlice) float64 { return s.Summary.P99 / 1000 },
		}, []string{"p50", "p99"}); err != nil {
		return err
	}
	return mk("sustained-rss.png", "sustained hello: RSS", "MiB",
		map[string]func(SustainedSlice) float64{
			"core":    func(s SustainedSlice) float64 { return s.CoreMiB },
			"workers": func(s SustainedSlice) float64 { return s.WorkerMiB },
		}, []string{"core", "workers"})
}

// throughputPlot draws req/s against concurrency for every target.
func throughputPlot(dir string, runs []ThroughputRun) error {
	p := plot.New()
	p.Title.Text = "hello: throughput by concurrency (closed loop)"
	p.X.Label.Text = "connections (log2)"
	p.Y.Label.Text = "req/s"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.ConstantTicks(concTicks(runs))
	p.Y.Min = 0
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	top := 0.0
	for _, r := range runs {
		for _, s := range r.Steps {
			top = max(top, s.Throughput)
		}
	}
	p.Y.Max = top * 1.35
	for i, r := range runs {
		var xy plotter.XYs
		for _, s := range r.Steps {
			xy = append(xy, plotter.XY{X: float64(s.Concurrency), Y: s.Throughput})
		}
		if err := addLine(p, i, r.Target, xy); err != nil {
			return err
		}
	}
	return p.Save(7*vg.Inch, 4*vg.Inch, filepath.Join(dir, "throughput.png"))
}

func concTicks(runs []ThroughputRun) []plot.Tick {
	m := 1
	for _, r := range runs {
		for _, s := range r.Steps {
			m = max(m, s.Concurrency)
		}
	}
	var t []plot.Tick
	for c := 1; c <= m; c *= 2 {
		t = append(t, plot.Tick{Value: float64(c), Label: fmt.Sprint(c)})
	}
	return t
}

// Replot redraws the plots that results.json holds the data of (RSS,
// throughput, sustained) in a results folder, e.g. after a plot change.
// The latency CDFs need the raw latencies and are drawn only by Run.
func Replot(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return err
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	secs := 0.0
	for _, m := range r.Memory {
		if n := len(m.Seconds); n > 0 {
			secs = max(secs, m.Seconds[n-1])
		}
	}
	if len(r.Memory) > 0 {
		if err := rssPlot(dir, "rss.png", r.Memory, secs); err != nil {
			return err
		}
	}
	if len(r.Throughput) > 0 {
		if err := throughputPlot(dir, r.Throughput); err != nil {
			return err
		}
	}
	return sustainedPlot(dir, r.Sustained)
}
