package replication

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/anishathalye/porcupine"

	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// The linearizability check: concurrent clients create, update, delete
// and read a few functions through the group while its leader is stopped;
// porcupine checks the recorded history against a sequential model of one
// function record. Times are a shared counter, taken before a call and
// after its answer: only the order of calls and answers matters.

// linFunction is the model's state of one function name.
type linFunction struct {
	present bool
	id      string
	version uint64
}

type linInput struct {
	op      string // create, update, delete, read
	name    string
	id      string // create: the new record's; update, delete: the one seen
	version uint64 // update, delete: the version seen
}

type linOutput struct {
	result  string // ok, exists, changed, notfound, unknown; read: present, absent
	id      string // read
	version uint64 // read
}

var linModel = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var names []string
		for _, o := range history {
			n := o.Input.(linInput).name
			if _, ok := by[n]; !ok {
				names = append(names, n)
			}
			by[n] = append(by[n], o)
		}
		var out [][]porcupine.Operation
		for _, n := range names {
			out = append(out, by[n])
		}
		return out
	},
	Init: func() []any { return []any{linFunction{}} },
	Step: func(state, input, output any) []any {
		s, in, out := state.(linFunction), input.(linInput), output.(linOutput)
		if in.op == "read" {
			if out.result == "absent" && !s.present ||
				out.result == "present" && s.present && s.id == out.id && s.version == out.version {
				return []any{s}
			}
			return nil
		}
		next, want := s, ""
		matches := s.present && s.id == in.id && s.version == in.version
		switch {
		case in.op == "create" && !s.present:
			next, want = linFunction{present: true, id: in.id, version: 1}, "ok"
		case in.op == "create":
			want = "exists"
		case !s.present:
			want = "notfound"
		case !matches:
			want = "changed"
		case in.op == "update":
			next, want = linFunction{present: true, id: s.id, version: s.version + 1}, "ok"
		case in.op == "delete":
			next, want = linFunction{}, "ok"
		}
		switch out.result {
		case "unknown":
			if next == s {
				return []any{s}
			}
			return []any{s, next}
		case want:
			return []any{next}
		}
		return nil
	},
	DescribeOperation: func(input, output any) string {
		return fmt.Sprintf("%+v → %+v", input, output)
	},
}

// TestModelRejectsLostUpdate shows the check has teeth: two updates of
// the same version that both succeed are not linearizable.
func TestModelRejectsLostUpdate(t *testing.T) {
	h := []porcupine.Operation{
		{Input: linInput{op: "create", name: "f", id: "a"}, Output: linOutput{result: "ok"}, Call: 1, Return: 2},
		{Input: linInput{op: "update", name: "f", id: "a", version: 1}, Output: linOutput{result: "ok"}, Call: 3, Return: 6},
		{Input: linInput{op: "update", name: "f", id: "a", version: 1}, Output: linOutput{result: "ok"}, Call: 4, Return: 5},
	}
	if porcupine.CheckOperations(linModel.ToModel(), h) {
		t.Fatal("a lost update passed the check")
	}
	h[2].Output = linOutput{result: "changed"}
	if !porcupine.CheckOperations(linModel.ToModel(), h) {
		t.Fatal("a linearizable history failed the check")
	}
}

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
	var clock, done atomic.Int64
	var mu sync.Mutex
	var history []porcupine.Operation
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
				in := linInput{name: name}
				call := clock.Add(1)
				var out linOutput
				var err error
				switch rng.IntN(4) {
				case 0:
					in.op = "read"
					var f storage.Function
					f, err = g.linearRead(name)
					switch {
					case err == nil:
						seen[name] = f
						out = linOutput{result: "present", id: f.ID, version: f.Version}
					case errors.Is(err, storage.ErrNotFound):
						delete(seen, name)
						out, err = linOutput{result: "absent"}, nil
					}
				case 1:
					in.op = "create"
					st := stamp(t, g.live()[0].store)
					in.id = st.ID
					_, err = g.apply(CreateFunction{In: storage.Module{Name: storage.DefaultModule}, New: newFunction(name, "code"), Stamp: st})
				default:
					f, ok := seen[name]
					if !ok {
						f = storage.Function{ID: "never", Module: storage.DefaultModule, Name: name, Owner: "alice", Version: 1}
					}
					in.id, in.version = f.ID, f.Version
					if rng.IntN(2) == 0 {
						in.op = "update"
						md := storage.Metadata{Tag: fmt.Sprintf("client %d op %d", c, i)}
						_, err = g.apply(UpdateFunction{Seen: f, Update: storage.FunctionUpdate{Metadata: &md}, At: f.UpdatedAt})
					} else {
						in.op = "delete"
						_, err = g.apply(DeleteFunction{Seen: f})
					}
				}
				ret := clock.Add(1)
				if in.op != "read" {
					switch {
					case err == nil:
						out.result = "ok"
					case errors.Is(err, ErrUnknownOutcome):
						out.result, err, ret = "unknown", nil, math.MaxInt64
					case errors.Is(err, storage.ErrExists):
						out.result, err = "exists", nil
					case errors.Is(err, storage.ErrChanged):
						out.result, err = "changed", nil
					case errors.Is(err, storage.ErrNotFound):
						out.result, err = "notfound", nil
					}
				}
				if err != nil {
					t.Errorf("client %d: %s %s: %v", c, in.op, name, err)
					return
				}
				mu.Lock()
				history = append(history, porcupine.Operation{ClientId: c, Input: in, Call: call, Output: out, Return: ret})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	counts := map[string]int{}
	for _, o := range history {
		counts[o.Output.(linOutput).result]++
	}
	t.Logf("%d operations: %v", len(history), counts)
	if counts["ok"] == 0 || counts["present"] == 0 {
		t.Fatalf("a history without successful writes or reads checks nothing: %v", counts)
	}
	if res := porcupine.CheckOperationsTimeout(linModel.ToModel(), history, 0); res != porcupine.Ok {
		t.Fatalf("the history is not linearizable (%v)", res)
	}
}
