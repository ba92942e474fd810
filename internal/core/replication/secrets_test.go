package replication

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/edgefaas/edgefaas/internal/core/secrets"
	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// groupKeyFile returns a new key file's contents.
func groupKeyFile(t *testing.T) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), secrets.FileName)
	if _, _, err := secrets.LoadOrCreate(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSecretsTravelSealed: a function's sink and trigger secrets written
// through the log are in no log entry in plain text, and open on every
// member; a rotation makes one new key current on every member; a member
// added once the log was compacted past the rotation, holding only the
// keys the group had before it (a member down meanwhile, or a joining core
// answered by a member not yet past it), restores the snapshot, takes the
// rotated key from it and opens them too, where one with a key of its own
// cannot.
func TestSecretsTravelSealed(t *testing.T) {
	g := newGroupKeyed(t, 3, func(c *raft.Config) {
		c.TrailingLogs = 2
		c.SnapshotThreshold = 1 << 30 // only the snapshot the test asks for
	}, groupKeyFile(t))
	markers := []string{"qry-77d1e0", "hdr-5e0c2a", "whs-1f2e3d", "mqp-90ab4c"}
	nf := newFunction("hooked", "code")
	nf.Sinks = []storage.Sink{{Type: storage.SinkWebhook, Params: storage.SinkParams{URL: "http://127.0.0.1:1/in?token=" + markers[0],
		Headers: map[string]string{"X-Token": markers[1]}, Secret: markers[2]}}}
	nf.Events = []storage.Event{{Type: storage.EventMQTT, Params: &storage.MQTTParams{Host: "127.0.0.1", Port: 1, Topic: "in", Password: markers[3]}}}
	var f storage.Function
	if err := onLeader(g, func(w *Writes) (err error) {
		f, err = w.CreateFunction(storage.Module{Name: storage.DefaultModule}, nf)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// holdsSecrets fails t unless f carries every secret, opened.
	holdsSecrets := func(who string, f storage.Function) {
		t.Helper()
		if len(f.Sinks) != 1 || len(f.Events) != 1 {
			t.Fatalf("%s: %+v", who, f)
		}
		p, e := f.Sinks[0].Params, f.Events[0].Params
		if p.URL != nf.Sinks[0].Params.URL || p.Headers["X-Token"] != markers[1] || p.Secret != markers[2] || e.Password != markers[3] || p.Sealed != "" || e.Sealed != "" {
			t.Errorf("%s: sink %+v, trigger %+v", who, p, e)
		}
	}
	holdsSecrets("the answer", f)
	before := g.leader().keys.Export()
	var id string
	if err := onLeader(g, func(w *Writes) (err error) {
		id, _, err = w.RotateSecretsKey()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// A write after the rotation is sealed under the new key.
	nf.Name = "after"
	if err := onLeader(g, func(w *Writes) error {
		_, err := w.CreateFunction(storage.Module{Name: storage.DefaultModule}, nf)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	l := g.leader()
	g.converged(l)
	for _, tm := range g.live() {
		for _, name := range []string{"hooked", "after"} {
			got, err := tm.store.GetFunction(storage.DefaultModule, name)
			if err != nil {
				t.Fatalf("%s: %v", tm.id, err)
			}
			holdsSecrets(string(tm.id)+" "+name, got)
		}
		if cur := tm.keys.Current(); cur != id {
			t.Errorf("%s seals under %s, want the rotated key %s", tm.id, cur, id)
		}
		for _, mk := range markers {
			for _, i := range entriesHolding(t, tm, mk) {
				t.Errorf("%s: log entry %d holds %q in plain text", tm.id, i, mk)
			}
		}
	}

	if err := l.m.Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	g.keyFile = groupKeyFile(t) // a joining core made a key of its own first
	nm := g.start("core-new", t.TempDir())
	if err := nm.keys.Adopt(before); err != nil {
		t.Fatal(err)
	}
	if err := l.m.Raft().AddVoter(nm.id, nm.trans.LocalAddr(), 0, limit).Error(); err != nil {
		t.Fatal(err)
	}
	g.converged(l)
	if nm.m.FSM().Restores() < 1 {
		t.Errorf("the new member restored no snapshot")
	}
	for _, name := range []string{"hooked", "after"} {
		got, err := nm.store.GetFunction(storage.DefaultModule, name)
		if err != nil {
			t.Fatalf("the new member: %v", err)
		}
		holdsSecrets("the new member's "+name, got)
	}
	if cur := nm.keys.Current(); cur != id {
		t.Errorf("the new member seals under %s, want the rotated key %s", cur, id)
	}

	// Without the group's keys (a core's own key, as each core had), the
	// snapshot's records do not open.
	lone := g.start("core-lone", t.TempDir())
	if err := l.m.Raft().AddVoter(lone.id, lone.trans.LocalAddr(), 0, limit).Error(); err != nil {
		t.Fatal(err)
	}
	waitState(t, "the member without the group's keys restores the snapshot", func() (bool, string) {
		return lone.m.FSM().Restores() > 0, fmt.Sprint(lone.m.FSM().Applied())
	})
	if _, err := lone.store.GetFunction(storage.DefaultModule, "hooked"); !errors.Is(err, secrets.ErrUnknownKey) {
		t.Errorf("a member without the group's keys reads a sealed record: %v, want ErrUnknownKey", err)
	}
}
