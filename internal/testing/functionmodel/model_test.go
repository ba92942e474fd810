package functionmodel

import (
	"math"
	"strings"
	"testing"

	"github.com/anishathalye/porcupine"
)

// op is one operation of a hand-written history.
type op struct {
	client       int
	in           Input
	call, answer int64
	out          Output
}

// operation is o as porcupine takes it: an Unknown answer returns at the
// end of time, as History.Add records it.
func operation(o op) porcupine.Operation {
	ret := o.answer
	if o.out.Result == Unknown {
		ret = math.MaxInt64
	}
	return porcupine.Operation{ClientId: o.client, Input: o.in, Call: o.call, Output: o.out, Return: ret}
}

// check checks a hand-written history.
func check(ops ...op) error {
	var h History
	for _, o := range ops {
		h.ops = append(h.ops, operation(o))
	}
	return h.Check()
}

// The checks have teeth: each history is refused, and accepted once the
// one wrong answer in it is right.
func TestModelRefusesWrongAnswers(t *testing.T) {
	for _, c := range []struct {
		name       string
		ops        []op
		fix        int // the operation whose answer is wrong
		right      Output
		wrongTells string
	}{{
		name: "a lost update: two updates of the same version both took effect",
		ops: []op{
			{0, Input{Op: Create, Name: "f", ID: "a"}, 1, 2, Output{Result: OK}},
			{0, Input{Op: Update, Name: "f", ID: "a", Version: 1}, 3, 6, Output{Result: OK}},
			{1, Input{Op: Update, Name: "f", ID: "a", Version: 1}, 4, 5, Output{Result: OK}},
		},
		fix: 2, right: Output{Result: Changed}, wrongTells: `function "f", 3 operations`,
	}, {
		name: "an acknowledged update the final read does not show",
		ops: []op{
			{0, Input{Op: Create, Name: "g", Content: "c0"}, 1, 2, Output{Result: OK, Version: 1}},
			{1, Input{Op: Update, Name: "g", Content: "u1"}, 3, 4, Output{Result: OK, Version: 2}},
			{2, Input{Op: Read, Name: "g"}, 5, 6, Output{Result: Present, Version: 1, Content: "c0"}},
		},
		fix: 2, right: Output{Result: Present, Version: 2, Content: "u1"},
	}, {
		name: "an acknowledged delete the final read does not show",
		ops: []op{
			{0, Input{Op: Create, Name: "h", Content: "c0"}, 1, 2, Output{Result: OK, Version: 1}},
			{1, Input{Op: Delete, Name: "h"}, 3, 4, Output{Result: OK}},
			{2, Input{Op: Read, Name: "h"}, 5, 6, Output{Result: Present, Version: 1, Content: "c0"}},
		},
		fix: 2, right: Output{Result: Absent},
	}, {
		name: "an update answered with a version it did not make",
		ops: []op{
			{0, Input{Op: Create, Name: "i", Content: "c0"}, 1, 2, Output{Result: OK, Version: 1}},
			{1, Input{Op: Update, Name: "i", Content: "u1"}, 3, 4, Output{Result: OK, Version: 3}},
		},
		fix: 1, right: Output{Result: OK, Version: 2},
	}, {
		name: "an update refused as changed though nothing was there",
		ops: []op{
			{0, Input{Op: Update, Name: "j", Content: "u1"}, 1, 2, Output{Result: Changed}},
		},
		fix: 0, right: Output{Result: NotFound},
	}, {
		name: "a write of unknown outcome that took effect before it was called",
		ops: []op{
			{0, Input{Op: Read, Name: "k"}, 1, 2, Output{Result: Present, Version: 1, Content: "c0"}},
			{1, Input{Op: Create, Name: "k", Content: "c0"}, 3, 0, Output{Result: Unknown}},
		},
		fix: 0, right: Output{Result: Absent},
	}} {
		t.Run(c.name, func(t *testing.T) {
			err := check(c.ops...)
			if err == nil {
				t.Fatal("the history passed the check")
			}
			if c.wrongTells != "" && !strings.Contains(err.Error(), c.wrongTells) {
				t.Errorf("the error does not say %q: %v", c.wrongTells, err)
			}
			c.ops[c.fix].out = c.right
			if err := check(c.ops...); err != nil {
				t.Fatalf("with the right answer: %v", err)
			}
		})
	}
}

// An unconditional write refused as changed is a write that did not take
// effect; one of unknown outcome may have taken effect, or not.
func TestModelAcceptsRefusedAndUnknownWrites(t *testing.T) {
	if err := check(
		op{0, Input{Op: Create, Name: "f", Content: "c0"}, 1, 2, Output{Result: OK, Version: 1}},
		op{1, Input{Op: Update, Name: "f", Content: "u1"}, 3, 8, Output{Result: Changed}},
		op{2, Input{Op: Update, Name: "f", Content: "u2"}, 4, 5, Output{Result: OK, Version: 2}},
		op{0, Input{Op: Delete, Name: "f"}, 6, 0, Output{Result: Unknown}},
		op{2, Input{Op: Read, Name: "f"}, 9, 10, Output{Result: Present, Version: 2, Content: "u2"}},
	); err != nil {
		t.Fatal(err)
	}
}
