package bench

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/edgefaas/edgefaas/internal/memcgroup"
	"github.com/edgefaas/edgefaas/internal/testing/attacks"
)

// attacksLimit is the memory cgroup the attacks section's single box runs
// in: tests/adversarial's.
const attacksLimit = 256 << 20

// AttackRow is one attack's cost to a neighbour tenant: its hello's p99
// while the box is calm, measured just before, and while the attack runs.
type AttackRow struct {
	Attack   string         `json:"attack"`
	What     string         `json:"what"`
	CalmP99  float64        `json:"calm_p99_us"`
	P99      float64        `json:"attack_p99_us"`
	Ratio    float64        `json:"ratio"`
	CalmOK   int            `json:"calm_calls"`
	OK       int            `json:"calls"`
	Wrong    int            `json:"neighbour_errors"`
	Answers  map[string]int `json:"attack_answers"`
	OOMKills int64          `json:"oom_kills"`
	Err      string         `json:"error,omitempty"`
}

// Attacks is the attacks section.
type Attacks struct {
	LimitMiB int           `json:"cgroup_limit_mib"` // 0: no cgroup could be made
	Each     time.Duration `json:"each_ns"`
	Rows     []AttackRow   `json:"rows"`
	Note     string        `json:"note,omitempty"`
}

// attacks runs each attack of internal/testing/attacks against a single box
// in a 256 MiB memory cgroup while a neighbour tenant calls its hello, and
// measures the neighbour's p99 calm (just before) and under the attack;
// then the full disk against a second box on a 48 MiB tmpfs, in the same
// cgroup.
func (e *env) attacks(ctx context.Context) error {
	each := 10 * time.Second
	if e.o.Quick {
		each = 500 * time.Millisecond
	}
	sec := &Attacks{Each: each}
	e.r.Attacks = sec
	var prefix []string
	g, err := memcgroup.New(fmt.Sprintf("edgefaas-bench-attacks-%d", os.Getpid()), attacksLimit, memcgroup.BelowOwnOrRoot)
	if err != nil {
		sec.Note = "no memory cgroup, the box ran without a limit: " + err.Error()
		e.logf("attacks       %s", sec.Note)
	} else {
		defer g.Remove()
		sec.LimitMiB = attacksLimit >> 20
		prefix = g.Wrap()
	}
	pl, err := startPlatformWith(ctx, prefix, "attacks", e.o.Binary, filepath.Join(e.dataDir, "attacks"), "127.0.0.203", 0)
	if err != nil {
		return err
	}
	defer pl.kill()
	oom := func() int64 {
		if g == nil {
			return 0
		}
		k, _ := g.OOMKills()
		return k
	}
	if err := e.attackBox(ctx, sec, pl, attacks.All(), oom); err != nil {
		return err
	}
	pl.kill()
	// The full disk last, on a box of its own whose data directory is a
	// small file system: on the first box it would end every attack
	// after it.
	disk := filepath.Join(e.dataDir, "attacks-disk")
	if err := mountTmpfs(disk, attacks.FullDiskBytes); err != nil {
		a := attacks.FullDisk()
		sec.Rows = append(sec.Rows, AttackRow{Attack: a.Name, What: a.What, Err: "not run: " + err.Error()})
		e.logf("attacks       %-16s not run: %v", a.Name, err)
		return nil
	}
	defer unmount(disk)
	full, err := startPlatformWith(ctx, prefix, "attacks-disk", e.o.Binary, disk, "127.0.0.204", 0)
	if err != nil {
		return err
	}
	defer full.kill()
	return e.attackBox(ctx, sec, full, []attacks.Attack{attacks.FullDisk()}, oom)
}

// attackBox runs each of as against the single box pl while a neighbour
// tenant calls its hello, and adds a row per attack to sec.
func (e *env) attackBox(ctx context.Context, sec *Attacks, pl *platform, as []attacks.Attack, oom func() int64) error {
	n, err := attacks.NewNeighbour(ctx, pl.api, pl.url, e.code["hello"])
	if err != nil {
		return err
	}
	box := attacks.Box{URL: pl.url, Guest: pl.guest, User: pl.user, Module: func(name string) ([]byte, error) {
		return os.ReadFile(filepath.Join(e.o.WasmDir, name+".wasm"))
	}, PID: pl.core.Pid}
	measure := func(c context.Context) attacks.Calls {
		stop := n.During()
		<-c.Done()
		return stop()
	}
	for _, a := range as {
		row := AttackRow{Attack: a.Name, What: a.What}
		if err := a.Setup(ctx, box); err != nil {
			row.Err = firstLine(err.Error())
			sec.Rows = append(sec.Rows, row)
			e.logf("attacks       %-16s not run: %s", a.Name, row.Err)
			continue
		}
		calmCtx, cancel := context.WithTimeout(ctx, sec.Each)
		calm := measure(calmCtx)
		cancel()
		before := oom()
		attackCtx, cancel := context.WithTimeout(ctx, sec.Each)
		answers := make(chan map[string]int, 1)
		go func() { answers <- a.Run(attackCtx, box) }()
		under := measure(attackCtx)
		cancel()
		row.Answers = <-answers
		row.CalmOK, row.OK, row.Wrong = calm.OK, under.OK, len(calm.Wrong)+len(under.Wrong)
		row.CalmP99, row.P99 = us(calm.P99()), us(under.P99())
		row.Ratio = ratio(row.P99, row.CalmP99)
		row.OOMKills = oom() - before
		if row.Wrong > 0 {
			row.Err = "neighbour: " + firstLine(append(calm.Wrong, under.Wrong...)[0])
		}
		sec.Rows = append(sec.Rows, row)
		e.logf("attacks       %-16s neighbour p99 calm %s, under attack %s (%s); %d calls, %d wrong; attack answered %v; OOM kills %d",
			a.Name, dur(row.CalmP99), dur(row.P99), x(row.Ratio), row.OK, row.Wrong, row.Answers, row.OOMKills)
	}
	return nil
}

// markdown renders the attacks section.
func (a *Attacks) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## Attacks — a neighbour tenant's p99 while another attacks\n\n")
	limit := fmt.Sprintf("in a %d MiB memory cgroup", a.LimitMiB)
	if a.LimitMiB == 0 {
		limit = "without a memory cgroup (" + a.Note + ")"
	}
	w("A single box %s; a neighbour tenant calls its hello one call at a time, for %s calm and then %s while a hostile tenant runs each attack of `internal/testing/attacks` (as `tests/adversarial` does); the full disk on a second box of its own, whose data directory is a 48 MiB tmpfs. Ratio = p99 under attack / calm p99.\n\n", limit, a.Each, a.Each)
	w("| attack | what | calm p99 | p99 under attack | ratio | neighbour calls (calm / attack) | neighbour errors | attack answered | OOM kills |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, r := range a.Rows {
		if r.Err != "" && r.OK == 0 {
			w("| %s | %s | – | – | – | – | – | %s | – |\n", r.Attack, r.What, oneLine(r.Err))
			continue
		}
		var ans []string
		for _, k := range slices.Sorted(maps.Keys(r.Answers)) {
			ans = append(ans, fmt.Sprintf("%s ×%d", k, r.Answers[k]))
		}
		w("| %s | %s | %s | %s | %s | %d / %d | %d | %s | %d |\n", r.Attack, r.What, dur(r.CalmP99), dur(r.P99), x(r.Ratio), r.CalmOK, r.OK, r.Wrong, strings.Join(ans, ", "), r.OOMKills)
	}
	w("\n")
	return b.String()
}
