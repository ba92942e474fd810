package inspectproc

import (
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgefaas/edgefaas/internal/memcgroup"
)

// DefaultMemory is a child's memory share before the code's own size is
// added (membudget.ValidatorChild: the core's budget sets aside
// ValidatorConcurrency of them, which the children's bounds are admitted
// against).
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
	cg    *memcgroup.Group // nil: the watchdog

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
	} else if err := cg.Add(pid); err != nil {
		slog.Debug("inspect: the child could not join its cgroup, watching its resident size instead", "err", err)
		removeCgroup(cg)
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
	defer removeCgroup(m.cg)
	kills, _ := m.cg.OOMKills()
	peak, _ = m.cg.Peak()
	return kills > 0, peak
}

// cgroupPrefix names the children's cgroups: prefix, the core's PID, a
// sequence number (memcgroup.RemoveStale finds a dead core's by it).
const cgroupPrefix = "edgefaas-inspect-"

var (
	staleOnce sync.Once
	cgSeq     atomic.Int64
)

// newCgroup makes a memory cgroup with limit below this process's own
// memory cgroup, so whatever bounds the core also accounts for its
// children. The first call removes those a killed core left behind.
func newCgroup(limit int64) (*memcgroup.Group, error) {
	if noCgroup {
		return nil, memcgroup.ErrUnavailable
	}
	staleOnce.Do(func() { memcgroup.RemoveStale(cgroupPrefix) })
	name := fmt.Sprintf("%s%d-%d", cgroupPrefix, os.Getpid(), cgSeq.Add(1))
	return memcgroup.New(name, limit, memcgroup.BelowOwn)
}

// removeCgroup removes a child's group once the child was waited for.
func removeCgroup(g *memcgroup.Group) {
	if err := g.Remove(); err != nil {
		slog.Warn("inspect: cgroup left behind", "err", err)
	}
}
