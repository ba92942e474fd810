// Package memcgroup makes a memory cgroup with a limit for tests and
// benchmarks: the real kernel limit an operator sets with systemd
// MemoryMax=, docker -m or Kubernetes limits, so that a node's behaviour
// under it (OOM kills, the budget it reports) is measured, not assumed.
//
// It uses cgroup v2 where a memory controller can be enabled, else v1's
// memory hierarchy. The group is made below the calling process's own
// memory cgroup where possible, so whatever accounts for the caller still
// accounts for the group.
package memcgroup

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// Group is a memory cgroup made by New.
type Group struct {
	Dir string // the cgroup's directory
	V2  bool
}

// ErrUnavailable wraps every reason a memory cgroup cannot be made here.
var ErrUnavailable = errors.New("no writable memory cgroup")

// New makes a memory cgroup named name with limit bytes (swap off where
// the kernel has the knob).
func New(name string, limit int64) (*Group, error) {
	var reasons []string
	if g, err := newV2(name, limit); err == nil {
		return g, nil
	} else {
		reasons = append(reasons, "v2: "+err.Error())
	}
	if g, err := newV1(name, limit); err == nil {
		return g, nil
	} else {
		reasons = append(reasons, "v1: "+err.Error())
	}
	return nil, fmt.Errorf("%w: %s", ErrUnavailable, strings.Join(reasons, "; "))
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
		if sep < 0 || len(fields) < sep+3 || len(fields) < 5 {
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

// ownPath is this process's cgroup path in hierarchy id/controller
// (v2: "0::PATH"; v1: "N:memory:PATH").
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

func newV2(name string, limit int64) (*Group, error) {
	ms, _ := mounts()
	if len(ms) == 0 {
		return nil, errors.New("no cgroup2 mount")
	}
	var errs []string
	for _, m := range ms {
		for _, parent := range []string{under(m, ownPath(true)), m.point} {
			ctl, err := os.ReadFile(filepath.Join(parent, "cgroup.controllers"))
			if err != nil || !strings.Contains(" "+strings.TrimSpace(string(ctl))+" ", " memory ") {
				errs = append(errs, parent+": no memory controller")
				continue
			}
			// Enabling memory for children fails in a cgroup with processes
			// (v2's no-internal-processes rule) unless it is the root.
			os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+memory"), 0)
			dir := filepath.Join(parent, name)
			if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
				errs = append(errs, err.Error())
				continue
			}
			g := &Group{Dir: dir, V2: true}
			if err := g.write("memory.max", strconv.FormatInt(limit, 10)); err != nil {
				os.Remove(dir)
				errs = append(errs, err.Error())
				continue
			}
			g.write("memory.swap.max", "0")
			return g, nil
		}
	}
	return nil, errors.New(strings.Join(errs, "; "))
}

func newV1(name string, limit int64) (*Group, error) {
	_, ms := mounts()
	if len(ms) == 0 {
		return nil, errors.New("no cgroup v1 memory mount")
	}
	var errs []string
	for _, m := range ms {
		for _, parent := range []string{under(m, ownPath(false)), m.point} {
			dir := filepath.Join(parent, name)
			if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
				errs = append(errs, err.Error())
				continue
			}
			g := &Group{Dir: dir}
			if err := g.write("memory.limit_in_bytes", strconv.FormatInt(limit, 10)); err != nil {
				os.Remove(dir)
				errs = append(errs, err.Error())
				continue
			}
			// Without swap accounting the knob is absent; with it, no swap.
			g.write("memory.memsw.limit_in_bytes", strconv.FormatInt(limit, 10))
			return g, nil
		}
	}
	return nil, errors.New(strings.Join(errs, "; "))
}

func (g *Group) write(file, v string) error {
	if err := os.WriteFile(filepath.Join(g.Dir, file), []byte(v), 0); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	return nil
}

// ProcsFile is the file a process writes its PID to, to join the group
// (its children follow it).
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

// OOMKills is how many processes the kernel OOM-killed in the group.
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
	return 0, fmt.Errorf("%s has no oom_kill counter", f)
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

func (g *Group) readInt(file string) (int64, error) {
	b, err := os.ReadFile(filepath.Join(g.Dir, file))
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// Remove removes the group once its processes are gone (it waits up to
// 5 s for them to leave).
func (g *Group) Remove() error {
	var err error
	if werr := wait.Until(context.Background(), 5*time.Second, "the cgroup's processes gone", func() bool {
		err = os.Remove(g.Dir)
		return err == nil || os.IsNotExist(err)
	}); werr != nil {
		return fmt.Errorf("remove cgroup %s: %w (%v)", g.Dir, err, werr)
	}
	return nil
}
