package replication

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// TestNodeCommandsRoundTrip: the node CA's commands decode to themselves
// and take ops no other command has.
func TestNodeCommandsRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 7, 4, 0, 0, 0, time.UTC)
	nc := storage.NodeCert{Name: "worker@h", Serial: "01", IssuedAt: at}
	taken := map[op]bool{}
	for _, c := range every(t) {
		taken[c.op()] = true
	}
	for _, c := range []Command{
		PutJoinToken{Hash: strings.Repeat("ab", 32), Token: storage.JoinToken{Node: "worker@h", CreatedAt: at, ExpiresAt: at.Add(time.Hour)}},
		SpendJoinToken{Hash: strings.Repeat("ab", 32)},
		ReplaceNodeCert{New: nc},
		ReplaceNodeCert{Seen: &nc, New: storage.NodeCert{Name: "worker@h", Serial: "01", IssuedAt: at, Revoked: true, RevokedAt: at}},
		AdoptNodeCA{CA: storage.NodeCA{CertPEM: "cert", KeyPEM: "key"}},
	} {
		if taken[c.op()] {
			t.Fatalf("%T: op %d is taken", c, c.op())
		}
		b, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(b)
		if err != nil || !reflect.DeepEqual(got, c) {
			t.Errorf("%T: decoded %+v (%v), want %+v", c, got, err, c)
		}
	}
}

// TestNodeRecordsAreTheGroups: a join token written through the log is
// spent once, a second spend refused alike on every member; a change of
// a node record decided on a superseded record is refused; the first CA
// proposed is the group's; every member holds the same records, and the
// log never carries the token. (Forwarding from a follower is shown with
// real processes in tests/group.)
func TestNodeRecordsAreTheGroups(t *testing.T) {
	g := newGroup(t, 3, nil)
	l := g.leader()
	token, _, err := l.m.Writes().CreateJoinToken("worker@h", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	accepted := 0
	if _, err := l.m.Writes().ConsumeJoinToken(token, func(jt storage.JoinToken) error {
		accepted++
		if jt.Node != "worker@h" {
			t.Errorf("token for %q, want worker@h", jt.Node)
		}
		return nil
	}); err != nil {
		t.Fatalf("spend: %v", err)
	}
	if _, err := l.m.Writes().ConsumeJoinToken(token, nil); !errors.Is(err, storage.ErrTokenInvalid) {
		t.Fatalf("second spend: %v, want ErrTokenInvalid", err)
	}
	// Of two spends decided on the same record, the log refuses the second.
	tok2, _, err := l.m.Writes().CreateJoinToken("", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.apply(SpendJoinToken{Hash: storage.JoinTokenHash(tok2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.apply(SpendJoinToken{Hash: storage.JoinTokenHash(tok2)}); !errors.Is(err, storage.ErrTokenInvalid) {
		t.Fatalf("a spent token spent again: %v, want ErrTokenInvalid", err)
	}

	nc, err := l.m.Writes().UpdateNodeCert("worker@h", func(r *storage.NodeCert, create bool) error {
		if !create {
			t.Error("a new record is not created")
		}
		r.Serial, r.IssuedAt = "01", l.store.Now()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stale := nc
	if _, err := l.m.Writes().UpdateNodeCert("worker@h", func(r *storage.NodeCert, _ bool) error {
		r.Revoked, r.RevokedAt = true, l.store.Now()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.apply(ReplaceNodeCert{Seen: &stale, New: storage.NodeCert{Name: "worker@h", Serial: "02"}}); !errors.Is(err, storage.ErrChanged) {
		t.Fatalf("a change decided on a superseded record: %v, want ErrChanged", err)
	}

	first := storage.NodeCA{CertPEM: "first cert", KeyPEM: "first key"}
	if got, err := l.m.Writes().AdoptNodeCA(first); err != nil || got != first {
		t.Fatalf("first CA: %+v %v", got, err)
	}
	if got, err := l.m.Writes().AdoptNodeCA(storage.NodeCA{CertPEM: "second", KeyPEM: "second"}); err != nil || got != first {
		t.Fatalf("second CA proposed: the group's is %+v (%v), want the first", got, err)
	}

	g.converged(l)
	for _, tm := range g.live() {
		if _, err := tm.store.GetJoinToken(storage.JoinTokenHash(token)); !errors.Is(err, storage.ErrTokenInvalid) {
			t.Errorf("%s: the spent token is still held (%v)", tm.id, err)
		}
		if r, err := tm.store.GetNodeCert("worker@h"); err != nil || !r.Revoked || r.Serial != "01" {
			t.Errorf("%s: record %+v (%v), want serial 01 revoked", tm.id, r, err)
		}
		if ca, err := tm.store.GetNodeCA(); err != nil || ca != first {
			t.Errorf("%s: CA %+v (%v), want the first", tm.id, ca, err)
		}
		last, err := tm.m.logs.LastIndex()
		if err != nil {
			t.Fatal(err)
		}
		for i := uint64(1); i <= last; i++ {
			var e raft.Log
			if err := tm.m.logs.GetLog(i, &e); err == nil && bytes.Contains(e.Data, []byte(token)) {
				t.Errorf("%s: log entry %d holds the join token", tm.id, i)
			}
		}
	}
	if accepted != 1 {
		t.Errorf("accept ran %d times, want 1", accepted)
	}
}
