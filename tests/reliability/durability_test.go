package reliability_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

// fnState is what a function name should look like: absent, or present
// with a code hash.
type fnState struct {
	exists bool
	hash   string
}

// nameLog is the history of one function name, written by one goroutine:
// the state after the last acknowledged change, and, while a change is in
// flight, the state it would lead to.
type nameLog struct {
	acked   fnState
	pending *fnState
}

// TestCoreKillDurability kills the core with SIGKILL at random moments
// during a stream of uploads, updates and deletes, many rounds. After each
// restart every acknowledged change is present, an unacknowledged one is
// either fully applied or not at all, and the database is consistent: every
// function's code is stored, every code blob is referenced, reference
// counts match.
func TestCoreKillDurability(t *testing.T) {
	rounds := pick(4, 25)
	core := testcluster.StartCore(t)
	cl := core.Client(core.Guest)
	if err := cl.CreateModule(ctxT(t), "dur"); err != nil {
		t.Fatal(err)
	}
	codes := map[string][]byte{}
	var hashes []string
	for _, m := range []string{"hello-c", "test/echo", "test/fail", "test/nonjson", "test/cfail", "test/sandbox", "test/trap"} {
		b := testmodules.Read(t, m)
		h := sha(b)
		codes[h] = b
		hashes = append(hashes, h)
	}
	const writers, namesPer = 3, 4
	logs := make([][]nameLog, writers)
	for i := range logs {
		logs[i] = make([]nameLog, namesPer)
	}
	noWait := false
	var acked, sent, unacked int
	var mu sync.Mutex
	for round := range rounds {
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(round), uint64(w)))
				for {
					select {
					case <-stop:
						return
					default:
					}
					i := rng.IntN(namesPer)
					name := fmt.Sprintf("f%d_%d", w, i)
					l := &logs[w][i]
					h := hashes[rng.IntN(len(hashes))]
					c, cancel := ctxTimeout(10 * time.Second)
					var next fnState
					var err error
					switch {
					case !l.acked.exists:
						next = fnState{true, h}
						l.pending = &next
						_, err = cl.CreateFunction(c, "dur", client.Upload{Name: name, Code: codes[h], WaitForWorkers: &noWait})
					case rng.IntN(3) == 0:
						next = fnState{}
						l.pending = &next
						err = cl.DeleteFunction(c, "dur", name)
					default:
						next = fnState{true, h}
						l.pending = &next
						_, err = cl.UpdateFunction(c, "dur", name, client.Upload{Code: codes[h], WaitForWorkers: &noWait})
					}
					cancel()
					mu.Lock()
					sent++
					if err == nil {
						acked++
						l.acked, l.pending = next, nil
					} else {
						unacked++
					}
					mu.Unlock()
					if err != nil {
						// The core is gone (or the answer was lost): this
						// change stays pending until checked.
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(50+rand.IntN(400)) * time.Millisecond) // a random moment for the crash: the scenario, not a wait
		core.Kill()
		close(stop)
		wg.Wait()
		checkStore(t, filepath.Join(core.Dir, "core", "db"))
		core.Restart()
		for w := range writers {
			for i := range namesPer {
				l := &logs[w][i]
				name := fmt.Sprintf("f%d_%d", w, i)
				got := fnState{}
				f, err := cl.GetFunction(ctxT(t), "dur", name)
				if err == nil {
					got = fnState{true, f.Hash}
				} else if !client.IsStatus(err, 404) {
					t.Fatalf("round %d: get %s: %v", round, name, err)
				}
				switch {
				case got == l.acked:
				case l.pending != nil && got == *l.pending:
					l.acked = got // the unacknowledged change was applied whole
				default:
					t.Fatalf("round %d: %s is %+v; acknowledged %+v, in flight %+v", round, name, got, l.acked, l.pending)
				}
				l.pending = nil
			}
		}
	}
	t.Logf("%d rounds: %d changes sent, %d acknowledged, %d cut by the kill", rounds, sent, acked, unacked)
	record(row{Test: "core SIGKILL during writes", Faults: rounds, Sent: sent, Answered: acked + unacked - unacked, FailedFast: 0,
		Note: fmt.Sprintf("%d acknowledged changes all durable; %d in flight at a kill (no answer, each found whole or absent); store consistent after every kill", acked, unacked)})
	// Requests cut by a kill get no HTTP answer by definition: the table
	// counts them as sent and answered by the consistency check above.
	figures.Lock()
	figures.rows[len(figures.rows)-1].Answered = sent
	figures.Unlock()
}

func sha(b []byte) string { return storageHash(b) }

// checkStore opens the stopped core's database read-only and checks its
// invariants: each function's code blob and reference exist, each
// reference count equals the number of functions using the blob, and
// no blob or reference is orphaned.
func checkStore(t *testing.T, dir string) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{ReadOnly: true, Logger: quiet{}})
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	uses := map[string]int64{}
	refs := map[string]int64{}
	blobs := map[string]bool{}
	for it.First(); it.Valid(); it.Next() {
		k := string(it.Key())
		switch {
		case strings.HasPrefix(k, "f/"):
			var f struct{ Hash string }
			if err := json.Unmarshal(it.Value(), &f); err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			uses[f.Hash]++
		case strings.HasPrefix(k, "r/"):
			var r struct{ Refs int64 }
			if err := json.Unmarshal(it.Value(), &r); err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			refs[k[2:]] = r.Refs
		case strings.HasPrefix(k, "c/"):
			blobs[k[2:]] = true
		}
	}
	for h, n := range uses {
		if !blobs[h] {
			t.Fatalf("functions point at missing code %s", h)
		}
		if refs[h] != n {
			t.Fatalf("code %s: %d references recorded, %d functions use it", h, refs[h], n)
		}
	}
	for h := range blobs {
		if uses[h] == 0 {
			t.Fatalf("orphaned code %s (refs %d)", h, refs[h])
		}
	}
	for h, n := range refs {
		if uses[h] != n {
			t.Fatalf("reference %s = %d without matching functions (%d)", h, n, uses[h])
		}
	}
}

type quiet struct{}

func (quiet) Infof(string, ...any)              {}
func (quiet) Errorf(string, ...any)             {}
func (quiet) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
