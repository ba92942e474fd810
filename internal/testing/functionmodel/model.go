// Package functionmodel checks that a history of concurrent creates,
// updates, deletes and reads of functions is linearizable: porcupine
// (github.com/anishathalye/porcupine) searches for an order of the
// operations, each taking effect at one instant between its call and its
// answer, that a sequential model of one function record per name
// explains. The replicated store's in-process test and the core group's
// test over real processes record their histories with it, so both are
// judged by the same model.
package functionmodel

import (
	"fmt"

	"github.com/anishathalye/porcupine"
)

// The operations.
const (
	Create = "create"
	Update = "update"
	Delete = "delete"
	Read   = "read"
)

// The answers. A write answers OK, Exists, Changed, NotFound or Unknown; a
// read answers Present or Absent.
const (
	OK       = "ok"
	Exists   = "exists"   // a create onto a name that is taken
	Changed  = "changed"  // an update or delete of a record another write replaced
	NotFound = "notfound" // an update or delete of a name that is free
	Unknown  = "unknown"  // the write may or may not have taken effect
	Present  = "present"
	Absent   = "absent"
)

// State is the model's record of one function name.
type State struct {
	Present bool
	ID      string
	Version uint64
	Content string
}

// Input is one operation on one name.
type Input struct {
	Op   string
	Name string
	// ID and Version: for a create the new record's identity (Version
	// unused); for an update or delete the record the caller saw, which
	// the write applies to only if it is still there. Both zero: the
	// write applies to whichever record is there, as the HTTP API's
	// updates and deletes do.
	ID      string
	Version uint64
	// Content is what a create or update writes (a function's tag, say).
	Content string
}

// unconditional reports whether the write names no record it saw.
func (in Input) unconditional() bool { return in.ID == "" && in.Version == 0 }

// Output is an operation's answer.
type Output struct {
	Result string
	// ID, Version and Content: a read's record. Version is also what an
	// OK create or update answered, when the caller knows it (0: not
	// checked).
	ID      string
	Version uint64
	Content string
}

// Model is the sequential model, one partition per name.
var Model = porcupine.NondeterministicModel{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var names []string
		for _, o := range history {
			n := o.Input.(Input).Name
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
	Init: func() []any { return []any{State{}} },
	Step: step,
	DescribeOperation: func(input, output any) string {
		return fmt.Sprintf("%+v → %+v", input, output)
	},
	DescribeState: func(state any) string { return fmt.Sprintf("%+v", state) },
}

// step returns the states the operation may leave s in, none if its
// answer is impossible in s.
func step(state, input, output any) []any {
	s, in, out := state.(State), input.(Input), output.(Output)
	if in.Op == Read {
		if out.Result == Absent && !s.Present ||
			out.Result == Present && s.Present && s.ID == out.ID && s.Version == out.Version && s.Content == out.Content {
			return []any{s}
		}
		return nil
	}
	next, want := s, ""
	matches := s.Present && (in.unconditional() || s.ID == in.ID && s.Version == in.Version)
	switch {
	case in.Op == Create && !s.Present:
		next, want = State{Present: true, ID: in.ID, Version: 1, Content: in.Content}, OK
	case in.Op == Create:
		want = Exists
	case !s.Present:
		want = NotFound
	case !matches:
		want = Changed
	case in.Op == Update:
		next, want = State{Present: true, ID: s.ID, Version: s.Version + 1, Content: in.Content}, OK
	case in.Op == Delete:
		next, want = State{}, OK
	}
	switch {
	case out.Result == Unknown:
		if next == s {
			return []any{s}
		}
		return []any{s, next}
	case out.Result == want:
		if out.Result == OK && out.Version != 0 && out.Version != next.Version {
			return nil
		}
		return []any{next}
	case out.Result == Changed && in.unconditional() && s.Present:
		// The API checks the record it finds, then writes on condition
		// that it is still there: another write in between refuses it.
		// That record was present at an instant of the call, this one.
		return []any{s}
	}
	return nil
}
