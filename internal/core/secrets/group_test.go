package secrets_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgefaas/edgefaas/internal/core/secrets"
)

func newRing(t *testing.T) *secrets.Keyring {
	t.Helper()
	kr, _, err := secrets.LoadOrCreate(filepath.Join(t.TempDir(), secrets.FileName))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// TestGroupKeyring: a core that adopts the group's ring seals under the
// group's key, opens what the group and what it sealed itself before, and
// keeps the adopted ring in its file; a key sealed for a rotation opens
// on every ring holding the sealing key and becomes current, once; a ring
// told to keep its old keys keeps them through Retire; a ring whose key
// id names another key is refused.
func TestGroupKeyring(t *testing.T) {
	group, joiner := newRing(t), newRing(t)
	own, err := joiner.Seal([]byte("before"), "a")
	if err != nil {
		t.Fatal(err)
	}
	if err := joiner.Adopt(group.Export()); err != nil {
		t.Fatal(err)
	}
	if joiner.Current() != group.Current() {
		t.Fatalf("the joiner seals under %s, the group under %s", joiner.Current(), group.Current())
	}
	reloaded, _, err := secrets.LoadOrCreate(joiner.Path())
	if err != nil || reloaded.Current() != group.Current() {
		t.Fatalf("the joiner's file after adopting: %v", err)
	}
	byGroup, err := group.Seal([]byte("from the group"), "a")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ v, want string }{{byGroup, "from the group"}, {own, "before"}} {
		if p, err := reloaded.Open(c.v, "a"); err != nil || string(p) != c.want {
			t.Errorf("the joiner opens %q, %v; want %q", p, err, c.want)
		}
	}

	id, sealed, err := group.NewSealedKey()
	if err != nil || !secrets.IsSealed(sealed) {
		t.Fatal(err)
	}
	if group.Current() == id {
		t.Fatal("NewSealedKey changed the ring")
	}
	for _, kr := range []*secrets.Keyring{group, joiner} {
		kr.KeepOldKeys()
		if err := kr.AddSealed(id, sealed); err != nil || kr.Current() != id {
			t.Fatalf("add the sealed key: %v, current %s", err, kr.Current())
		}
		if err := kr.AddSealed(id, sealed); !errors.Is(err, secrets.ErrKeyHeld) {
			t.Fatalf("add it again: %v, want ErrKeyHeld", err)
		}
		if err := kr.Retire(); err != nil {
			t.Fatal(err)
		}
		if p, err := kr.Open(byGroup, "a"); err != nil || string(p) != "from the group" {
			t.Errorf("after Retire, a value under the old key: %q, %v", p, err)
		}
	}
	v, err := group.Seal([]byte("new"), "a")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := joiner.Open(v, "a"); err != nil || string(p) != "new" {
		t.Errorf("the joiner opens a value under the rotated key: %q, %v", p, err)
	}
	if err := newRing(t).AddSealed(id, sealed); !errors.Is(err, secrets.ErrUnknownKey) {
		t.Errorf("a ring without the sealing key adds the key: %v, want ErrUnknownKey", err)
	}

	// A ring whose file names the group's key id with other bytes.
	forged := newRing(t)
	line := strings.SplitN(string(group.Export()), " ", 2)[0] + " " + strings.SplitN(string(forged.Export()), " ", 2)[1]
	if err := forged.Adopt([]byte(line)); err != nil {
		t.Fatal(err)
	}
	if err := forged.Adopt(group.Export()); err == nil {
		t.Error("adopted a ring whose key id names another key")
	}
}
