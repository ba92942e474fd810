package replication

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// every is one command of each type.
func every(t *testing.T) []Command {
	at := time.Date(2026, 12, 6, 22, 0, 0, 123, time.UTC)
	md := storage.Metadata{Tag: "t", AllowedHosts: []string{"example.org"}}
	evs := []storage.Event{}
	return []Command{
		CreateModule{Name: "m", Owner: "alice", Stamp: storage.Stamp{ID: "id1", At: at}},
		RenameModule{Seen: storage.Module{ID: "id1", Name: "m", Owner: "alice", CreatedAt: at}, To: "n", At: at},
		DeleteModule{Seen: storage.Module{ID: "id1", Name: "n", Owner: "alice", CreatedAt: at}},
		CreateFunction{In: storage.Module{Name: storage.DefaultModule}, New: newFunction("f", "code"), Stamp: storage.Stamp{ID: "id2", At: at}},
		UpdateFunction{Seen: storage.Function{ID: "id2", Name: "f", Version: 1}, Update: storage.FunctionUpdate{Code: []byte{0, 1, 255}, ABI: "wasi", Metadata: &md, Events: &evs}, At: at},
		UpdateFunction{Seen: storage.Function{ID: "id2", Name: "f", Version: 2}, Update: storage.FunctionUpdate{ABI: "wasi"}, At: at, CodeHash: strings.Repeat("ef", 32)},
		DeleteFunction{Seen: storage.Function{ID: "id2", Name: "f", Version: 2}},
		CreateSubject{Name: "bob", TokenHash: strings.Repeat("ab", 32), At: at},
		RotateToken{Name: "bob", TokenHash: strings.Repeat("cd", 32), At: at},
		RevokeToken{Name: "bob"},
		SetSubjectEgress{Subject: "bob", Hosts: []string{"*.example.org"}},
		ClearSubjectEgress{Subject: "bob"},
		SetSubjectQuota{Subject: "bob", Quota: storage.Quota{Functions: 3, CodeBytes: 1 << 20, MinCronPeriodSeconds: 60}},
		ClearSubjectQuota{Subject: "bob"},
		CreateScript{Script: storage.Script{Name: "s", Owner: "alice", Script: json.RawMessage(`{"a":1}`), Source: "a: 1"}, At: at},
		DeleteScript{Seen: storage.Script{ID: 1, Name: "s", Owner: "alice", Script: json.RawMessage(`{"a":1}`)}},
		RotateSecretsKey{ID: "0a1b2c3d", Key: "sealed:v1:4e5f6a7b:bm9uY2UgYW5kIGNpcGhlcnRleHQ"},
	}
}

// TestCommandsRoundTrip: every command decodes to itself, and encodes to
// the same bytes twice.
func TestCommandsRoundTrip(t *testing.T) {
	types := map[op]string{}
	for _, c := range append(every(t), everyQueue()...) {
		name := fmt.Sprintf("%T", c)
		if other, ok := types[c.op()]; ok && other != name {
			t.Fatalf("%s and %s share op %d", name, other, c.op())
		}
		types[c.op()] = name
		b, err := Encode(c)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		b2, _ := Encode(c)
		if !bytes.Equal(b, b2) {
			t.Errorf("%T: two encodings differ", c)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("%T: %v", c, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("%T: decoded\n%+v\nwant\n%+v", c, got, c)
		}
	}
}

// newFSM is a state machine over a fresh store, both closed with t.
func newFSM(t *testing.T) (*FSM, *storage.Store) {
	t.Helper()
	store, err := storage.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f, err := NewFSM(store, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return f, store
}

// TestBadEntryIsAnAnswer: an entry that is not a known command is refused
// with an error by every member alike; it neither panics nor stops one.
func TestBadEntryIsAnAnswer(t *testing.T) {
	f, _ := newFSM(t)
	for i, data := range [][]byte{nil, {0}, {200, '{'}, {byte(opCreateFunction), '{'}, {byte(opCreateFunction), '[', ']'}} {
		res := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: data})
		r, ok := res.(Result)
		if !ok || !errors.Is(r.Err, errBadCommand) {
			t.Errorf("entry %q: %+v, want errBadCommand", data, res)
		}
	}
}

// TestEveryCommandReplicates: subjects, tokens, egress bounds and scripts
// go through the log like functions: every member ends with the same
// records, the token works on every member and never entered the log.
func TestEveryCommandReplicates(t *testing.T) {
	g := newGroup(t, 3, nil)
	l := g.leader()
	token, hash, err := storage.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	bobQuota := storage.DefaultQuota
	bobQuota.Functions = 3
	for _, c := range []Command{
		CreateSubject{Name: "bob", TokenHash: hash, At: l.store.Now()},
		CreateSubject{Name: "carol", TokenHash: strings.Repeat("ab", 32), At: l.store.Now()},
		SetSubjectEgress{Subject: "bob", Hosts: []string{"*.example.org"}},
		SetSubjectEgress{Subject: "carol", Hosts: []string{"a.example.org"}},
		ClearSubjectEgress{Subject: "carol"},
		SetSubjectQuota{Subject: "bob", Quota: bobQuota},
		SetSubjectQuota{Subject: "carol", Quota: storage.Quota{Functions: 4}},
		ClearSubjectQuota{Subject: "carol"},
		RevokeToken{Name: "carol"},
		CreateScript{Script: storage.Script{Name: "s1", Owner: "bob", Script: json.RawMessage(`{"a":1}`), Source: "a: 1"}, At: l.store.Now()},
		CreateScript{Script: storage.Script{Name: "s2", Owner: "bob", Script: json.RawMessage(`{"a":2}`), Source: "a: 2"}, At: l.store.Now()},
	} {
		if _, err := g.apply(c); err != nil {
			t.Fatalf("%T: %v", c, err)
		}
	}
	// A write past a quota is an answer every member reaches, not a
	// failure that stops one.
	in := storage.Module{Name: storage.DefaultModule}
	for i := range 4 {
		nf := storage.NewFunction{Name: fmt.Sprintf("b%d", i), Owner: "bob", Code: []byte("x"), ABI: "funless"}
		_, err := g.apply(CreateFunction{In: in, New: nf, Stamp: stamp(t, l.store)})
		if i < 3 && err != nil {
			t.Fatalf("bob's function %d: %v", i, err)
		}
		if i == 3 && !errors.Is(err, storage.ErrQuota) {
			t.Fatalf("bob's fourth function: %v, want ErrQuota", err)
		}
	}
	s1, err := l.store.GetScript("s1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.apply(DeleteScript{Seen: s1}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.apply(RevokeToken{Name: "nobody"}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("revoking an unknown subject: %v, want ErrNotFound", err)
	}
	g.converged(l)
	for _, tm := range g.live() {
		sub, err := tm.store.Authenticate(token)
		if err != nil || sub.Name != "bob" {
			t.Errorf("%s: the token authenticates %q (%v), want bob", tm.id, sub.Name, err)
		}
		if sc, err := tm.store.GetScript("s2"); err != nil || sc.ID != 2 {
			t.Errorf("%s: script s2 has id %d (%v), want 2", tm.id, sc.ID, err)
		}
		if q, set, err := tm.store.SubjectQuota("bob"); err != nil || !set || q.Functions != 3 {
			t.Errorf("%s: bob's quota %+v set %v (%v), want 3 functions", tm.id, q, set, err)
		}
		if _, set, err := tm.store.SubjectQuota("carol"); err != nil || set {
			t.Errorf("%s: carol's quota still set (%v)", tm.id, err)
		}
		for _, i := range entriesHolding(t, tm, token) {
			t.Errorf("%s: log entry %d holds the token", tm.id, i)
		}
	}
}

// entriesHolding returns the indexes of the entries in tm's log whose
// bytes hold s.
func entriesHolding(t *testing.T, tm *testMember, s string) []uint64 {
	t.Helper()
	last, err := tm.m.logs.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for i := uint64(1); i <= last; i++ {
		var e raft.Log
		if err := tm.m.logs.GetLog(i, &e); err == nil && bytes.Contains(e.Data, []byte(s)) {
			out = append(out, i)
		}
	}
	return out
}

// lastCommand returns the data of the last command entry in tm's log.
func lastCommand(t *testing.T, tm *testMember) []byte {
	t.Helper()
	last, err := tm.m.logs.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	for i := last; i > 0; i-- {
		var e raft.Log
		if err := tm.m.logs.GetLog(i, &e); err != nil {
			t.Fatal(err)
		}
		if e.Type == raft.LogCommand {
			return e.Data
		}
	}
	t.Fatal("no command in the log")
	return nil
}

// TestStoredCodeIsNotLoggedAgain: code is stored once per hash, and the
// log carries it once too: a second function with the same code, or an
// update to code the group holds, is an entry naming the hash; every
// member stores the function with its code. Naming code the store does
// not hold is answered ErrCodeMissing on every member alike.
func TestStoredCodeIsNotLoggedAgain(t *testing.T) {
	g := newGroup(t, 3, nil)
	l := g.leader()
	code := bytes.Repeat([]byte("wasm"), 16<<10) // 64 KiB
	in := storage.Module{Name: storage.DefaultModule}
	nf := storage.NewFunction{Name: "f1", Owner: "alice", Code: code, ABI: "funless"}
	if _, err := l.m.Propose(CreateFunction{In: in, New: nf, Stamp: stamp(t, l.store)}); err != nil {
		t.Fatal(err)
	}
	if n := len(lastCommand(t, l)); n < len(code) {
		t.Fatalf("the first function's entry is %d bytes, less than its code", n)
	}
	nf.Name = "f2"
	v, err := l.m.Propose(CreateFunction{In: in, New: nf, Stamp: stamp(t, l.store)})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(lastCommand(t, l)); n >= len(code)/4 {
		t.Errorf("the second function's entry is %d bytes: it carries the code again", n)
	}
	f2 := v.(storage.Function)
	if _, err := l.m.Propose(UpdateFunction{Seen: f2, Update: storage.FunctionUpdate{Code: code, ABI: "wasi"}, At: l.store.Now()}); err != nil {
		t.Fatal(err)
	}
	if n := len(lastCommand(t, l)); n >= len(code)/4 {
		t.Errorf("the update's entry is %d bytes: it carries the code again", n)
	}
	other := []byte("code no function has")
	_, err = g.apply(CreateFunction{In: in, New: storage.NewFunction{Name: "f3", Owner: "alice", ABI: "funless"},
		Stamp: stamp(t, l.store), CodeHash: storage.HashCode(other)})
	if !errors.Is(err, ErrCodeMissing) {
		t.Errorf("naming code that is not stored: %v, want ErrCodeMissing", err)
	}
	g.converged(l)
	for _, tm := range g.live() {
		for _, name := range []string{"f1", "f2"} {
			f, err := tm.store.GetFunction(storage.DefaultModule, name)
			if err != nil {
				t.Fatalf("%s: %v", tm.id, err)
			}
			got, err := tm.store.Code(f.Hash)
			if err != nil || !bytes.Equal(got, code) || f.Size != int64(len(code)) {
				t.Errorf("%s: %s has %d bytes of code (%v), size %d", tm.id, name, len(got), err, f.Size)
			}
		}
		if n, _ := tm.store.CodeRefs(storage.HashCode(code)); n != 2 {
			t.Errorf("%s: the code has %d references, want 2", tm.id, n)
		}
	}
}
