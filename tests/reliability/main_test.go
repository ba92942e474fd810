// Package reliability_test injects faults into a real edgefaas platform
// (core and workers as separate processes, see internal/testcluster) and
// feeds it hostile input: the core killed with SIGKILL mid-write, workers
// killed mid-call, network faults between core and worker in network
// namespaces, overload, a soak, malicious functions, and every route and
// node join with bad credentials. Every test counts requests sent and
// answered; none may be lost.
//
// Short forms run in `make test`; `make reliability` runs the long forms
// (-reliability.long) and writes the figures table (-reliability.results).
package reliability_test

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/core/storage"
)

var (
	long      = flag.Bool("reliability.long", false, "run the long forms (more rounds, longer soak)")
	soakTime  = flag.Duration("reliability.soak", 0, "soak duration (default 20s, 5m with -reliability.long)")
	resultsTo = flag.String("reliability.results", "", "write the figures table (markdown) to this file")
	fuzzLog   = flag.String("reliability.fuzzlog", "", "file with `TARGET EXECS` lines from the fuzz runs, for the table")
)

// pick returns the short or the long value.
func pick[T any](short, longv T) T {
	if *long {
		return longv
	}
	return short
}

// row is one line of the figures table.
type row struct {
	Test       string
	Faults     int
	Sent       int
	Answered   int
	Retried    int // client retries after 429/503 (the core's own retries are not exposed)
	FailedFast int // explicit errors (429/503/422/500...) answered before any timeout
	MaxDetect  time.Duration
	Note       string
}

var figures struct {
	sync.Mutex
	rows               []row
	malicious, contain int
}

func record(r row) {
	figures.Lock()
	defer figures.Unlock()
	figures.rows = append(figures.rows, r)
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if *resultsTo != "" {
		if err := writeTable(*resultsTo); err != nil {
			fmt.Fprintln(os.Stderr, "write results:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func writeTable(path string) error {
	figures.Lock()
	defer figures.Unlock()
	var b strings.Builder
	mode := "short"
	if *long {
		mode = "long"
	}
	fmt.Fprintf(&b, "# Reliability run (%s form), %s\n\n", mode, time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	b.WriteString("| test | faults injected | requests sent | answered | lost | retried | failed fast | max detection | notes |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	var tot row
	for _, r := range figures.rows {
		det := "–"
		if r.MaxDetect > 0 {
			det = r.MaxDetect.Round(time.Millisecond).String()
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %s | %s |\n", r.Test, r.Faults, r.Sent, r.Answered, r.Sent-r.Answered, r.Retried, r.FailedFast, det, r.Note)
		tot.Faults += r.Faults
		tot.Sent += r.Sent
		tot.Answered += r.Answered
		tot.Retried += r.Retried
		tot.FailedFast += r.FailedFast
		tot.MaxDetect = max(tot.MaxDetect, r.MaxDetect)
	}
	fmt.Fprintf(&b, "| **total** | %d | %d | %d | **%d** | %d | %d | %s | |\n\n", tot.Faults, tot.Sent, tot.Answered, tot.Sent-tot.Answered, tot.Retried, tot.FailedFast, tot.MaxDetect.Round(time.Millisecond))
	fmt.Fprintf(&b, "Malicious functions contained: **%d of %d**.\n\n", figures.contain, figures.malicious)
	if *fuzzLog != "" {
		if f, err := os.Open(*fuzzLog); err == nil {
			b.WriteString("| fuzz target | executions |\n| --- | ---: |\n")
			var lines []string
			s := bufio.NewScanner(f)
			for s.Scan() {
				if fs := strings.Fields(s.Text()); len(fs) == 2 {
					lines = append(lines, fmt.Sprintf("| %s | %s |", fs[0], fs[1]))
				}
			}
			f.Close()
			sort.Strings(lines)
			b.WriteString(strings.Join(lines, "\n") + "\n")
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// outcome is one answered (or not) request.
type outcome struct {
	status  int // 200, the API error's status, or -1 (no HTTP answer)
	detail  string
	took    time.Duration
	retried int
}

// call runs one invocation; a 429 is retried after a short pause up to
// retries times (the client-side half of "retried").
func call(cl *client.Client, mod, fn, args string, timeout time.Duration, retries int) outcome {
	var o outcome
	for {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		t0 := time.Now()
		_, err := cl.Invoke(ctx, mod, fn, []byte(args))
		cancel()
		o.took += time.Since(t0)
		o.status, o.detail = 200, ""
		var ae *client.Error
		if errors.As(err, &ae) {
			o.status, o.detail = ae.Status, ae.Detail
		} else if err != nil {
			o.status, o.detail = -1, err.Error()
		}
		if o.status == 429 && o.retried < retries {
			o.retried++
			time.Sleep(50 * time.Millisecond) // a client's backoff after 429, not a wait for a state
			continue
		}
		return o
	}
}

// tally sums outcomes.
type tally struct {
	mu       sync.Mutex
	sent     int
	byStatus map[int]int
	retried  int
	slowest  time.Duration
	samples  map[int]string
}

func (t *tally) add(o outcome) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byStatus == nil {
		t.byStatus, t.samples = map[int]int{}, map[int]string{}
	}
	t.sent++
	t.byStatus[o.status]++
	t.retried += o.retried
	t.slowest = max(t.slowest, o.took)
	if _, ok := t.samples[o.status]; !ok {
		t.samples[o.status] = o.detail
	}
}

func (t *tally) answered() int { return t.sent - t.byStatus[-1] }

// count is how many calls have been tallied so far.
func (t *tally) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sent
}
func (t *tally) failedFast() int {
	return t.answered() - t.byStatus[200]
}

// ctxT is a context for one API step.
func ctxT(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

func ctxTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

func storageHash(b []byte) string { return storage.HashCode(b) }
