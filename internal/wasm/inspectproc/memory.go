package inspectproc

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMemory is a child's memory share before the code's own size is
// added (membudget.ValidatorChild, which the core's budget admits each
// child against).
const DefaultMemory int64 = 48 << 20

// codeFactor is how many times its own size an upload may add to its
// child's bound: the code is held as read, as decoded (function bodies are
// copied) and in the reader's growth.
const codeFactor = 4

// childLimit is the memory bound of the child validating code.
func childLimit(share int64, code int) int64 { return share + codeFactor*int64(code) }

// memBound holds one child to its memory bound: in its own memory cgroup
// whose limit the kernel enforces (an OOM kill inside that cgroup, never
// in the core's), or, where the core cannot make one, by a watchdog that
// reads the child's resident size less its shared file pages and kills it
// beyond the bound.
type memBound struct {
	limit int64
	cg    *cgroup // nil: the watchdog

	killed atomic.Bool  // the watchdog killed the child
	peak   atomic.Int64 // the watchdog's highest resident size seen
	stop   chan struct{}
	done   chan struct{}
}

// bind puts the started child (pid, killed by kill) under limit. It must
// run before the child is given its input.
func bind(pid int, kill func() error, limit int64) *memBound {
	m := &memBound{limit: limit}
	if cg, err := newCgroup(limit); err != nil {
		slog.Debug("inspect: no memory cgroup, watching the child's resident size instead", "err", err)
	} else if err := cg.add(pid); err != nil {
		slog.Debug("inspect: the child could not join its cgroup, watching its resident size instead", "err", err)
		cg.remove()
	} else {
		m.cg = cg
		return m
	}
	m.stop, m.done = make(chan struct{}), make(chan struct{})
	go m.watch(pid, kill)
	return m
}

// noCgroup makes every child watched (tests of the watchdog).
var noCgroup bool

// watchEvery is how often the watchdog reads the child's resident size.
const watchEvery = time.Millisecond

func (m *memBound) watch(pid int, kill func() error) {
	defer close(m.done)
	statm := fmt.Sprintf("/proc/%d/statm", pid)
	page := int64(os.Getpagesize())
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(statm); err == nil {
			// resident − shared: what the child owns, not the binary's
			// pages it maps from the page cache (a cgroup is not charged
			// for those either when the core faulted them in first).
			if f := strings.Fields(string(b)); len(f) > 2 {
				res, err1 := strconv.ParseInt(f[1], 10, 64)
				shared, err2 := strconv.ParseInt(f[2], 10, 64)
				if err1 == nil && err2 == nil {
					rss := (res - shared) * page
					if rss > m.peak.Load() {
						m.peak.Store(rss)
					}
					if rss > m.limit && !m.killed.Load() {
						m.killed.Store(true)
						kill()
					}
				}
			}
		}
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
	}
}

// end is called once the child was waited for: it stops the watchdog or
// removes the cgroup, and says whether the child was stopped for its
// memory, and its peak (bytes, 0 where unknown).
func (m *memBound) end() (overLimit bool, peak int64) {
	if m.cg == nil {
		close(m.stop)
		<-m.done
		return m.killed.Load(), m.peak.Load()
	}
	defer m.cg.remove()
	kills, _ := m.cg.oomKills()
	peak, _ = m.cg.peak()
	return kills > 0, peak
}

// cgroup is one child's memory cgroup.
type cgroup struct {
	dir string
	v2  bool
}

var (
	cgOnce   sync.Once
	cgParent string // where children's cgroups are made; "" none
	cgV2     bool
	cgSeq    atomic.Int64
)

// errNoCgroup: this process may not make memory cgroups.
var errNoCgroup = errors.New("no writable memory cgroup below this process's own")

// newCgroup makes a memory cgroup with limit below this process's own
// memory cgroup (so whatever bounds the core also accounts for its
// children): cgroup v2 where its memory controller is delegated to this
// process's cgroup, else v1's memory hierarchy.
func newCgroup(limit int64) (*cgroup, error) {
	if noCgroup {
		return nil, errNoCgroup
	}
	cgOnce.Do(findParent)
	if cgParent == "" {
		return nil, errNoCgroup
	}
	g := &cgroup{dir: filepath.Join(cgParent, fmt.Sprintf("edgefaas-inspect-%d-%d", os.Getpid(), cgSeq.Add(1))), v2: cgV2}
	if err := os.Mkdir(g.dir, 0o755); err != nil {
		return nil, fmt.Errorf("make cgroup: %w", err)
	}
	lim := strconv.FormatInt(limit, 10)
	file := "memory.limit_in_bytes"
	if g.v2 {
		file = "memory.max"
	}
	if err := g.write(file, lim); err != nil {
		g.remove()
		return nil, err
	}
	// No swap (where the knob exists): the bound is on memory, not RAM.
	if g.v2 {
		g.write("memory.swap.max", "0")
	} else {
		g.write("memory.memsw.limit_in_bytes", lim)
	}
	return g, nil
}

func findParent() {
	defer removeStale()
	v2, v1 := cgroupMounts()
	for _, m := range v2 {
		dir := ownDir(m, true)
		ctl, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
		if err != nil {
			continue
		}
		if !strings.Contains(" "+strings.TrimSpace(string(ctl))+" ", " memory ") {
			// Enabling it succeeds only where no process lives in dir
			// (v2's rule) or dir is the root.
			if os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte("+memory"), 0) != nil {
				continue
			}
		}
		if writableDir(dir) {
			cgParent, cgV2 = dir, true
			return
		}
	}
	for _, m := range v1 {
		if dir := ownDir(m, false); writableDir(dir) {
			cgParent = dir
			return
		}
	}
}

// removeStale removes the children's cgroups a core killed before it
// could remove them left behind (those of a process that is gone; a
// cgroup with a process in it cannot be removed anyway).
func removeStale() {
	if cgParent == "" {
		return
	}
	dirs, _ := filepath.Glob(filepath.Join(cgParent, "edgefaas-inspect-*"))
	for _, d := range dirs {
		pid, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), "edgefaas-inspect-"), "-")
		if _, err := os.Stat("/proc/" + pid); os.IsNotExist(err) {
			os.Remove(d)
		}
	}
}

// writableDir says whether a cgroup can be made in dir.
func writableDir(dir string) bool {
	probe := filepath.Join(dir, fmt.Sprintf("edgefaas-inspect-%d-probe", os.Getpid()))
	if err := os.Mkdir(probe, 0o755); err != nil && !os.IsExist(err) {
		return false
	}
	return os.Remove(probe) == nil
}

type cgMount struct{ root, point string }

// cgroupMounts lists cgroup2 mounts and v1 mounts with the memory
// controller, from /proc/self/mountinfo.
func cgroupMounts() (v2, v1 []cgMount) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, nil
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		sep := -1
		for i, x := range fields {
			if x == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || len(fields) < sep+4 {
			continue
		}
		m := cgMount{root: fields[3], point: fields[4]}
		switch fields[sep+1] {
		case "cgroup2":
			v2 = append(v2, m)
		case "cgroup":
			if strings.Contains(","+fields[sep+3]+",", ",memory,") {
				v1 = append(v1, m)
			}
		}
	}
	return v2, v1
}

// ownDir is this process's cgroup directory in mount m.
func ownDir(m cgMount, v2 bool) string {
	own := "/"
	if b, err := os.ReadFile("/proc/self/cgroup"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			parts := strings.SplitN(line, ":", 3)
			if len(parts) != 3 {
				continue
			}
			if (v2 && parts[0] == "0" && parts[1] == "") || (!v2 && strings.Contains(","+parts[1]+",", ",memory,")) {
				own = parts[2]
			}
		}
	}
	rel, err := filepath.Rel(m.root, own)
	if err != nil || strings.HasPrefix(rel, "..") {
		return m.point
	}
	return filepath.Join(m.point, rel)
}

func (g *cgroup) write(file, v string) error {
	if err := os.WriteFile(filepath.Join(g.dir, file), []byte(v), 0); err != nil {
		return fmt.Errorf("cgroup %s: write %s: %w", g.dir, file, err)
	}
	return nil
}

func (g *cgroup) add(pid int) error { return g.write("cgroup.procs", strconv.Itoa(pid)) }

// oomKills is how many processes the kernel killed in the group for its
// limit (v1 memory.oom_control, v2 memory.events: "oom_kill N").
func (g *cgroup) oomKills() (int64, error) {
	file := "memory.oom_control"
	if g.v2 {
		file = "memory.events"
	}
	b, err := os.ReadFile(filepath.Join(g.dir, file))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("cgroup %s: %s has no oom_kill counter", g.dir, file)
}

// peak is the group's highest usage (v1 memory.max_usage_in_bytes, v2
// memory.peak where the kernel has it).
func (g *cgroup) peak() (int64, error) {
	file := "memory.max_usage_in_bytes"
	if g.v2 {
		file = "memory.peak"
	}
	b, err := os.ReadFile(filepath.Join(g.dir, file))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// remove removes the group; its only process was waited for, but the
// kernel may take a moment to let it go.
func (g *cgroup) remove() {
	for i := 0; i < 100; i++ {
		if err := os.Remove(g.dir); err == nil || os.IsNotExist(err) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	slog.Warn("inspect: cgroup left behind", "dir", g.dir)
}
