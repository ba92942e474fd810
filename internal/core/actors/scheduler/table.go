// Package scheduler decides where an invocation runs. Table is the policy,
// plain Go and safe for concurrent use, so the HTTP goroutines read it
// without a message hop; Actor is the core's scheduler process, the only
// writer, fed by workers' reports and node monitors.
package scheduler

import (
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgefaas/edgefaas/internal/actors/wire"
	"github.com/edgefaas/edgefaas/internal/core/app"
)

// Worker is what the core knows of one worker node.
type Worker struct {
	Node        string   `json:"name"`
	Version     string   `json:"version"`
	Arch        string   `json:"arch"`
	OS          string   `json:"os"`
	Tags        []string `json:"tags,omitempty"`
	TotalMemory int      `json:"total_memory"`
	FreeMemory  int      `json:"free_memory"`
	// MemoryBudget, MemoryInUse (RSS) and MemoryReserved (by guests and
	// compiled code) are the node's own figures, bytes.
	MemoryBudget   int       `json:"memory_budget"`
	MemoryInUse    int       `json:"memory_in_use"`
	MemoryReserved int       `json:"memory_reserved"`
	Running        int       `json:"running"`
	Queued         int       `json:"queued"`
	MaxRunning     int       `json:"max_running"`
	InFlight       int       `json:"in_flight"` // sent by this core, not yet answered
	Functions      []string  `json:"functions"` // hashes of compiled versions
	Invocations    int       `json:"invocations"`
	Host           string    `json:"host"`
	Port           int       `json:"port"`
	Seen           time.Time `json:"last_report"`
	// ClockSkewMS is the worker's clock minus the core's when its last
	// report arrived, milliseconds (0: unknown).
	ClockSkewMS int64 `json:"clock_skew_ms"`
}

type entry struct {
	Worker
	cached   map[string]bool
	inFlight atomic.Int64
	// placed is the table's placement count when a call was last placed
	// here (0: never): among equal workers the least recently placed
	// wins, so idle equals take turns instead of one taking every call.
	placed atomic.Int64

	tagMu sync.Mutex
	tags  map[string]int // calls in flight from this core by function tag (APP affinity)
}

// Table is the set of live workers.
type Table struct {
	mu      sync.RWMutex
	workers map[string]*entry
	// placeMu serialises placements by APP script, from the snapshot to
	// counting the call in flight, so that max_concurrent_invocations
	// holds under concurrent calls.
	placeMu sync.Mutex
	// placements counts calls placed, for entry.placed.
	placements atomic.Int64
}

// NewTable returns an empty table.
func NewTable() *Table { return &Table{workers: map[string]*entry{}} }

// Update records a report; it returns true when the worker is new.
func (t *Table) Update(r wire.Report) bool {
	hashes := wire.SplitList(r.Cached)
	cached := make(map[string]bool, len(hashes))
	for _, h := range hashes {
		cached[h] = true
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.workers[r.Node]
	if !ok {
		e = &entry{}
		t.workers[r.Node] = e
	}
	e.Worker = Worker{
		Node: r.Node, Version: r.Version, Arch: r.Arch, OS: r.OS, Tags: wire.SplitList(r.Tags),
		TotalMemory: r.TotalMemory, FreeMemory: r.FreeMemory,
		MemoryBudget: r.MemoryBudget, MemoryInUse: r.MemoryInUse, MemoryReserved: r.MemoryReserved,
		Running: r.Running, Queued: r.Queued, MaxRunning: r.MaxRunning,
		Functions: hashes, Invocations: r.Invocations, Host: r.Host, Port: r.Port, Seen: time.Now(),
	}
	if r.Clock != 0 {
		e.ClockSkewMS = r.Clock - e.Seen.UnixMilli()
	}
	e.cached = cached
	return !ok
}

// MarkCached records that node compiled hash, before its next report.
func (t *Table) MarkCached(node, hash string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if e, ok := t.workers[node]; ok && !e.cached[hash] {
		e.cached[hash] = true
		e.Functions = append(e.Functions, hash)
	}
}

// Remove forgets a worker; it reports whether it was known.
func (t *Table) Remove(node string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.workers[node]
	delete(t.workers, node)
	return ok
}

// Need is what an invocation requires of a worker.
type Need struct {
	Hash        string
	MemoryBytes int             // declared capacity; 0: none declared
	Tag         string          // FunLess's tag: only workers carrying it; "" any (with Script: the script's tag)
	Exclude     map[string]bool // workers already tried
	Only        map[string]bool // if set, only these workers (an APP block's valid ones)
	// Script, if set, places the call by this APP script (see Place); its
	// Tag selects the script's tag and does not filter by worker labels.
	Script *app.Script
}

// Pick chooses a worker: among those whose guests' share can hold the
// function at all (and with the tag), prefer one with enough free memory
// now, then one that has the version compiled and a free slot, then the
// least loaded
// (running and queued there plus in flight from this core, relative to its
// concurrency limit), then the one least recently placed on (so that idle
// equals, a restarted worker among them, take turns), then the one with
// the most free memory. A worker
// short of free memory is still chosen when every worker is: its engine
// admits by memory and queues the call, or answers busy, which beats
// refusing a call that fits once a running one ends. It returns false when
// no worker fits.
func (t *Table) Pick(n Need) (node string, cached, ok bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var best *entry
	bestFits, bestCached, bestLoad := false, false, 0.0
	for _, e := range t.workers {
		if n.Exclude[e.Node] || (n.Only != nil && !n.Only[e.Node]) || (e.TotalMemory > 0 && e.TotalMemory < n.MemoryBytes) ||
			(e.TotalMemory <= 0 && e.FreeMemory < n.MemoryBytes) {
			continue
		}
		if n.Tag != "" && !matchTag(e, n.Tag) {
			continue
		}
		fits := e.FreeMemory >= n.MemoryBytes
		load := float64(e.Running+e.Queued+int(e.inFlight.Load())) / float64(max(e.MaxRunning, 1))
		// The version compiled is worth waiting for only on a worker with
		// a free slot: a full one would queue the call while another (a
		// restarted one, say) idles.
		c := e.cached[n.Hash] && load < 1
		better := best == nil ||
			(fits && !bestFits) ||
			(fits == bestFits && ((c && !bestCached) ||
				(c == bestCached && (load < bestLoad ||
					(load == bestLoad && (e.placed.Load() < best.placed.Load() ||
						(e.placed.Load() == best.placed.Load() && (e.FreeMemory > best.FreeMemory ||
							(e.FreeMemory == best.FreeMemory && e.Node < best.Node)))))))))
		if better {
			best, bestFits, bestCached, bestLoad = e, fits, c, load
		}
	}
	if best == nil {
		return "", false, false
	}
	return best.Node, best.cached[n.Hash], true
}

// matchTag reports whether a worker carries a function's tag: one of its
// --tag labels, or "arch:GOARCH" / "os:GOOS" matching what it reports.
func matchTag(e *entry, tag string) bool {
	if slices.Contains(e.Tags, tag) {
		return true
	}
	if arch, ok := strings.CutPrefix(tag, "arch:"); ok {
		return e.Arch == arch
	}
	if os, ok := strings.CutPrefix(tag, "os:"); ok {
		return e.OS == os
	}
	return false
}

// Place chooses a worker for a call and counts the call in flight there
// (the caller calls Finish(node, n.Tag) when it ends). Without a script it
// is Pick. With one, the script decides (app.Script.Select) against a
// snapshot of the workers: their reported memory, the calls in flight
// (this core's, or the worker's last report of running and queued calls
// if higher) and the tags of this core's calls in flight there; a
// "platform" strategy or followup hands the choice back to Pick (among the
// block's valid workers, without the label filter). ok is false when no
// worker is connected or none fits; err is the script's refusal
// (app.ErrNoValidWorkers, app.ErrNoMatchingTag).
func (t *Table) Place(n Need) (node string, ok bool, err error) {
	if n.Script == nil {
		node, _, ok = t.Pick(n)
		if ok {
			t.Start(node, n.Tag)
		}
		return node, ok, nil
	}
	t.placeMu.Lock()
	defer t.placeMu.Unlock()
	ws := t.snapshot(n.Exclude)
	if len(ws) == 0 {
		return "", false, nil
	}
	ch, err := n.Script.Select(app.Call{Tag: n.Tag, MemoryBytes: n.MemoryBytes}, ws, rand.IntN)
	if err != nil {
		return "", false, err
	}
	node = ch.Worker
	if ch.Platform {
		p := n
		p.Tag, p.Script = "", nil
		if ch.Among != nil {
			p.Only = make(map[string]bool, len(ch.Among))
			for _, w := range ch.Among {
				p.Only[w] = true
			}
		}
		if node, _, ok = t.Pick(p); !ok {
			return "", false, nil
		}
	}
	t.Start(node, n.Tag)
	return node, true, nil
}

// snapshot copies what an APP script looks at, minus excluded workers.
func (t *Table) snapshot(exclude map[string]bool) []app.Worker {
	t.mu.RLock()
	defer t.mu.RUnlock()
	ws := make([]app.Worker, 0, len(t.workers))
	for _, e := range t.workers {
		if exclude[e.Node] {
			continue
		}
		w := app.Worker{Name: e.Node, TotalMemory: e.TotalMemory, FreeMemory: e.FreeMemory,
			Concurrent: max(int(e.inFlight.Load()), e.Running+e.Queued)}
		e.tagMu.Lock()
		if len(e.tags) > 0 {
			w.Tags = make(map[string]int, len(e.tags))
			for k, v := range e.tags {
				w.Tags[k] = v
			}
		}
		e.tagMu.Unlock()
		ws = append(ws, w)
	}
	return ws
}

// Started and Finished count this core's invocations in flight on node.
func (t *Table) Started(node string)  { t.Start(node, "") }
func (t *Table) Finished(node string) { t.Finish(node, "") }

// Start and Finish count a call in flight on node, and by its function's
// tag (if any) for APP affinity.
func (t *Table) Start(node, tag string)  { t.add(node, tag, 1) }
func (t *Table) Finish(node, tag string) { t.add(node, tag, -1) }

func (t *Table) add(node, tag string, d int64) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.workers[node]
	if !ok {
		return
	}
	e.inFlight.Add(d)
	if d > 0 {
		e.placed.Store(t.placements.Add(1))
	}
	if tag == "" {
		return
	}
	e.tagMu.Lock()
	if e.tags == nil {
		e.tags = map[string]int{}
	}
	if e.tags[tag] += int(d); e.tags[tag] <= 0 {
		delete(e.tags, tag)
	}
	e.tagMu.Unlock()
}

// Workers lists the live workers, sorted by name.
func (t *Table) Workers() []Worker {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]Worker, 0, len(t.workers))
	for _, e := range t.workers {
		w := e.Worker
		w.InFlight = int(e.inFlight.Load())
		w.Functions = slices.Clone(w.Functions)
		out = append(out, w)
	}
	slices.SortFunc(out, func(a, b Worker) int {
		if a.Node < b.Node {
			return -1
		}
		if a.Node > b.Node {
			return 1
		}
		return 0
	})
	return out
}

// Len is the number of live workers.
func (t *Table) Len() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.workers)
}
