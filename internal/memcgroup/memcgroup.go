// Package memcgroup makes memory cgroups: a child process held to a
// memory limit the kernel enforces (the upload validator's child), and
// the same limit an operator sets with systemd MemoryMax=, docker -m or
// Kubernetes limits, made by tests and benchmarks so a node's behaviour
// under it (OOM kills, the budget it reports) is measured, not assumed.
//
// It uses cgroup v2 where a memory controller can be enabled, else v1's
// memory hierarchy. A group is made below the calling process's own
// memory cgroup, so whatever bounds the caller also accounts for the
// group; tests and benchmarks started from a shell may also make one at
// the hierarchy's root (Place).
package memcgroup

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Group is a memory cgroup made by New.
type Group struct {
	Dir string // the cgroup's directory
	V2  bool
}

// ErrUnavailable wraps every reason a memory cgroup cannot be made here.
var ErrUnavailable = errors.New("no writable memory cgroup")

// Place says where New may make a group.
type Place int

const (
	// BelowOwn: only below the caller's own memory cgroup, so the limits
	// that bound the caller also bound the group (a node's children).
	BelowOwn Place = iota
	// BelowOwnOrRoot: there, or at the hierarchy's root where the
	// caller's own cgroup cannot hold one (tests and benchmarks, whose
	// groups stand for a machine's limit, not a share of the caller's).
	BelowOwnOrRoot
)

// New makes a memory cgroup named name with limit bytes (swap off where
// the kernel has the knob), v2 where it can, else v1.
func New(name string, limit int64, where Place) (*Group, error) {
	var reasons []string
	v2, v1 := mounts()
	for _, h := range []struct {
		v2 bool
		ms []mount
	}{{true, v2}, {false, v1}} {
		if len(h.ms) == 0 {
			reasons = append(reasons, hierarchy(h.v2)+": not mounted")
			continue
		}
		for _, m := range h.ms {
			for _, parent := range parents(m, h.v2, where) {
				g, err := make1(parent, name, limit, h.v2)
				if err == nil {
					return g, nil
				}
				reasons = append(reasons, hierarchy(h.v2)+": "+err.Error())
			}
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrUnavailable, strings.Join(reasons, "; "))
}

func hierarchy(v2 bool) string {
	if v2 {
		return "v2"
	}
	return "v1"
}

// parents is where a group may be made in m: the caller's own cgroup, and
// with BelowOwnOrRoot the mount's root.
func parents(m mount, v2 bool, where Place) []string {
	ps := []string{under(m, ownPath(v2))}
	if where == BelowOwnOrRoot && ps[0] != m.point {
		ps = append(ps, m.point)
	}
	return ps
}

// make1 makes group name in parent with limit.
func make1(parent, name string, limit int64, v2 bool) (*Group, error) {
	if v2 {
		ctl, err := os.ReadFile(filepath.Join(parent, "cgroup.controllers"))
		if err != nil || !strings.Contains(" "+strings.TrimSpace(string(ctl))+" ", " memory ") {
			return nil, fmt.Errorf("%s: no memory controller", parent)
		}
		// Enabling memory for children fails in a cgroup with processes
		// (v2's no-internal-processes rule) unless it is the root.
		os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+memory"), 0)
	}
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return nil, err
	}
	g := &Group{Dir: dir, V2: v2}
	lim := strconv.FormatInt(limit, 10)
	if v2 {
		if err := g.write("memory.max", lim); err != nil {
			os.Remove(dir)
			return nil, err
		}
		g.write("memory.swap.max", "0")
		return g, nil
	}
	if err := g.write("memory.limit_in_bytes", lim); err != nil {
		os.Remove(dir)
		return nil, err
	}
	// Without swap accounting the knob is absent; with it, no swap.
	g.write("memory.memsw.limit_in_bytes", lim)
	return g, nil
}

// RemoveStale removes the groups named prefix + PID + "-…" below the
// caller's own memory cgroups whose process PID is gone: those a killed
// process left behind (a group with a process in it cannot be removed
// anyway).
func RemoveStale(prefix string) {
	v2, v1 := mounts()
	var dirs []string
	for _, m := range v2 {
		dirs = append(dirs, under(m, ownPath(true)))
	}
	for _, m := range v1 {
		dirs = append(dirs, under(m, ownPath(false)))
	}
	for _, dir := range dirs {
		stale, _ := filepath.Glob(filepath.Join(dir, prefix+"*"))
		for _, d := range stale {
			pid, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(d), prefix), "-")
			if _, err := strconv.Atoi(pid); err != nil {
				continue
			}
			if _, err := os.Stat("/proc/" + pid); os.IsNotExist(err) {
				os.Remove(d)
			}
		}
	}
}

// mounts returns the mount points of cgroup filesystems: v2's, and v1's
// with the memory controller.
func mounts() (v2, v1 []mount) {
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
		m := mount{root: fields[3], point: fields[4]}
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

type mount struct{ root, point string }

// ownPath is this process's cgroup path in the v2 hierarchy ("0::PATH")
// or v1's memory one ("N:memory:PATH").
func ownPath(v2 bool) string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "/"
	}
	for _, line := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if v2 && parts[0] == "0" && parts[1] == "" {
			return parts[2]
		}
		if !v2 && strings.Contains(","+parts[1]+",", ",memory,") {
			return parts[2]
		}
	}
	return "/"
}

// under returns the directory of the caller's own cgroup in m, or m's
// root when the caller's is not visible there.
func under(m mount, own string) string {
	rel, err := filepath.Rel(m.root, own)
	if err != nil || strings.HasPrefix(rel, "..") {
		return m.point
	}
	d := filepath.Join(m.point, rel)
	if st, err := os.Stat(d); err != nil || !st.IsDir() {
		return m.point
	}
	return d
}

func (g *Group) write(file, v string) error {
	if err := os.WriteFile(filepath.Join(g.Dir, file), []byte(v), 0); err != nil {
		return fmt.Errorf("cgroup %s: write %s: %w", g.Dir, file, err)
	}
	return nil
}

// Add moves process pid into the group (its children follow it).
func (g *Group) Add(pid int) error { return g.write("cgroup.procs", strconv.Itoa(pid)) }

// ProcsFile is the file a process writes its PID to, to join the group.
func (g *Group) ProcsFile() string { return filepath.Join(g.Dir, "cgroup.procs") }

// Wrap returns a command prefix that puts the process it starts in the
// group before it execs the rest of its arguments:
// append(g.Wrap(), "prog", "arg"...).
func (g *Group) Wrap() []string {
	return []string{"sh", "-c", `echo $$ > "$0" && exec "$@"`, g.ProcsFile()}
}

// Limit is the group's limit, bytes, as the kernel rounded it.
func (g *Group) Limit() (int64, error) {
	f := "memory.limit_in_bytes"
	if g.V2 {
		f = "memory.max"
	}
	return g.readInt(f)
}

// OOMKills is how many processes the kernel OOM-killed in the group for
// its limit.
func (g *Group) OOMKills() (int64, error) {
	f := "memory.oom_control" // v1: "oom_kill N" (kernel ≥ 4.13)
	if g.V2 {
		f = "memory.events"
	}
	b, err := os.ReadFile(filepath.Join(g.Dir, f))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "oom_kill "); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("cgroup %s: %s has no oom_kill counter", g.Dir, f)
}

// Peak is the group's highest memory usage, bytes (v1
// memory.max_usage_in_bytes, v2 memory.peak where the kernel has it).
func (g *Group) Peak() (int64, error) {
	if g.V2 {
		return g.readInt("memory.peak")
	}
	return g.readInt("memory.max_usage_in_bytes")
}

// ResetPeak restarts Peak's measurement where the kernel allows it.
func (g *Group) ResetPeak() {
	if g.V2 {
		g.write("memory.peak", "0")
		return
	}
	g.write("memory.max_usage_in_bytes", "0")
}

// Unwritten is the group's page cache not yet on disk, bytes: pages
// dirty or under writeback (memory.stat's dirty and writeback; v2's
// file_dirty and file_writeback). Reclaim cannot drop them until the disk
// has them, so at the group's limit they are as unreclaimable as
// anonymous memory for as long as the disk takes.
func (g *Group) Unwritten() (int64, error) {
	b, err := os.ReadFile(filepath.Join(g.Dir, "memory.stat"))
	if err != nil {
		return 0, err
	}
	var n int64
	for _, l := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(l, " ")
		switch k {
		case "dirty", "writeback", "file_dirty", "file_writeback":
			x, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("memory.stat %s: %w", k, err)
			}
			n += x
		}
	}
	return n, nil
}

func (g *Group) readInt(file string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(g.Dir, file))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// removeWithin is how long Remove waits for the group's processes to
// leave: the kernel lets a group go a moment after its last process was
// waited for.
const removeWithin = 5 * time.Second

// Remove removes the group once its processes are gone.
func (g *Group) Remove() error {
	deadline := time.Now().Add(removeWithin)
	for {
		err := os.Remove(g.Dir)
		if err == nil || os.IsNotExist(err) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("remove cgroup %s: %w", g.Dir, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
