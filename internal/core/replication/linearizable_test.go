package replication

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/testing/functionmodel"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// The linearizability check: concurrent clients create, update, delete
// and read a few functions through the group while its leader is stopped;
// porcupine checks the recorded history against a sequential model of one
// function record (internal/testing/functionmodel).

// linearRead reads a function with LinearizableRead on whichever member
// leads.
func (g *testGroup) linearRead(name string) (storage.Function, error) {
	var f storage.Function
	var err error
	werr := wait.Until(g.t.Context(), limit, "a leader to read from", func() bool {
		for _, tm := range g.live() {
			err = tm.m.LinearizableRead(func(s *storage.Store) error {
				var rerr error
				f, rerr = s.GetFunction(storage.DefaultModule, name)
				return rerr
			})
			if !errors.Is(err, ErrNotLeader) {
				return true
			}
		}
		return false
	})
	if werr != nil {
		return storage.Function{}, werr
	}
	return f, err
}

func TestLinearizableUnderLeaderLoss(t *testing.T) {
	g := newGroup(t, 3, nil)
	const clients, opsEach, killAfter = 4, 40, 60
	names := []string{"a", "b", "c"}
	var done atomic.Int64
	var history functionmodel.History
	var killOnce sync.Once
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(c), 1))
			seen := map[string]storage.Function{}
			for i := 0; i < opsEach; i++ {
				if done.Add(1) == killAfter {
					killOnce.Do(func() { g.stop(g.leader()) })
				}
				name := names[rng.IntN(len(names))]
				in := functionmodel.Input{Name: name}
				call := history.Call()
				var out functionmodel.Output
				var err error
				switch rng.IntN(4) {
				case 0:
					in.Op = functionmodel.Read
					var f storage.Function
					f, err = g.linearRead(name)
					switch {
					case err == nil:
						seen[name] = f
						out = functionmodel.Output{Result: functionmodel.Present, ID: f.ID, Version: f.Version, Content: f.Metadata.Tag}
					case errors.Is(err, storage.ErrNotFound):
						delete(seen, name)
						out, err = functionmodel.Output{Result: functionmodel.Absent}, nil
					}
				case 1:
					in.Op = functionmodel.Create
					st := stamp(t, g.live()[0].store)
					in.ID = st.ID
					_, err = g.apply(CreateFunction{In: storage.Module{Name: storage.DefaultModule}, New: newFunction(name, "code"), Stamp: st})
				default:
					f, ok := seen[name]
					if !ok {
						f = storage.Function{ID: "never", Module: storage.DefaultModule, Name: name, Owner: "alice", Version: 1}
					}
					in.ID, in.Version = f.ID, f.Version
					if rng.IntN(2) == 0 {
						in.Op = functionmodel.Update
						md := storage.Metadata{Tag: fmt.Sprintf("client %d op %d", c, i)}
						in.Content = md.Tag
						_, err = g.apply(UpdateFunction{Seen: f, Update: storage.FunctionUpdate{Metadata: &md}, At: f.UpdatedAt})
					} else {
						in.Op = functionmodel.Delete
						_, err = g.apply(DeleteFunction{Seen: f})
					}
				}
				if in.Op != functionmodel.Read {
					switch {
					case err == nil:
						out.Result = functionmodel.OK
					case errors.Is(err, ErrUnknownOutcome):
						out.Result, err = functionmodel.Unknown, nil
					case errors.Is(err, storage.ErrExists):
						out.Result, err = functionmodel.Exists, nil
					case errors.Is(err, storage.ErrChanged):
						out.Result, err = functionmodel.Changed, nil
					case errors.Is(err, storage.ErrNotFound):
						out.Result, err = functionmodel.NotFound, nil
					}
				}
				if err != nil {
					t.Errorf("client %d: %s %s: %v", c, in.Op, name, err)
					return
				}
				history.Add(c, in, call, out)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	counts := history.Results()
	t.Logf("operations by answer: %v", counts)
	if counts[functionmodel.OK] == 0 || counts[functionmodel.Present] == 0 {
		t.Fatalf("a history without successful writes or reads checks nothing: %v", counts)
	}
	if err := history.Check(); err != nil {
		t.Fatal(err)
	}
}
