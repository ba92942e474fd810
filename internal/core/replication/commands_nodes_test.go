package replication

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

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
	var token string
	if err := onLeader(g, func(w *Writes) (err error) {
		token, _, err = w.CreateJoinToken("worker@h", time.Hour)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := onLeader(g, func(w *Writes) error {
		_, err := w.ConsumeJoinToken(token, func(jt storage.JoinToken) error {
			if jt.Node != "worker@h" {
				t.Errorf("token for %q, want worker@h", jt.Node)
			}
			return nil
		})
		return err
	}); err != nil {
		t.Fatalf("spend: %v", err)
	}
	if err := onLeader(g, func(w *Writes) error {
		_, err := w.ConsumeJoinToken(token, nil)
		return err
	}); !errors.Is(err, storage.ErrTokenInvalid) {
		t.Fatalf("second spend: %v, want ErrTokenInvalid", err)
	}
	// Of two spends decided on the same record, the log refuses the second.
	var tok2 string
	if err := onLeader(g, func(w *Writes) (err error) {
		tok2, _, err = w.CreateJoinToken("", time.Hour)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.apply(SpendJoinToken{Hash: storage.JoinTokenHash(tok2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.apply(SpendJoinToken{Hash: storage.JoinTokenHash(tok2)}); !errors.Is(err, storage.ErrTokenInvalid) {
		t.Fatalf("a spent token spent again: %v, want ErrTokenInvalid", err)
	}

	var stale storage.NodeCert
	if err := onLeader(g, func(w *Writes) (err error) {
		stale, err = w.UpdateNodeCert("worker@h", func(r *storage.NodeCert, _ bool) error {
			r.Serial, r.IssuedAt = "01", l.store.Now()
			return nil
		})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := onLeader(g, func(w *Writes) error {
		_, err := w.UpdateNodeCert("worker@h", func(r *storage.NodeCert, create bool) error {
			if create {
				t.Error("the record written through the log is not found")
			}
			r.Revoked, r.RevokedAt = true, l.store.Now()
			return nil
		})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.apply(ReplaceNodeCert{Seen: &stale, New: storage.NodeCert{Name: "worker@h", Serial: "02"}}); !errors.Is(err, storage.ErrChanged) {
		t.Fatalf("a change decided on a superseded record: %v, want ErrChanged", err)
	}

	first := storage.NodeCA{CertPEM: "first cert", KeyPEM: "first key"}
	for _, proposed := range []storage.NodeCA{first, {CertPEM: "second", KeyPEM: "second"}} {
		var got storage.NodeCA
		if err := onLeader(g, func(w *Writes) (err error) {
			got, err = w.AdoptNodeCA(proposed)
			return err
		}); err != nil || got != first {
			t.Fatalf("%s proposed: the group's CA is %+v (%v), want the first", proposed.CertPEM, got, err)
		}
	}

	g.converged(g.leader())
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
		for _, i := range entriesHolding(t, tm, token) {
			t.Errorf("%s: log entry %d holds the join token", tm.id, i)
		}
	}
}

// onLeader runs write with the writer of whichever member leads, again
// while it was refused before any leader took it (leadership moved: the
// machine is shared and loaded).
func onLeader(g *testGroup, write func(w *Writes) error) error {
	var err error
	for range 20 {
		if err = write(g.leader().m.Writes()); !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrNoLeader) {
			return err
		}
	}
	return err
}
