package secrets_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgefaas/edgefaas/internal/core/secrets"
)

// TestKeyring: the file is made 0600 on first use and read back; a value
// opens only with its aad; after a rotation the old value still opens
// until the old key is retired; an empty key file is refused, not
// replaced.
func TestKeyring(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "media", secrets.FileName)
	kr, created, err := secrets.LoadOrCreate(path)
	if err != nil || !created {
		t.Fatalf("create: %v, %v", created, err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st, err)
	}
	v, err := kr.Seal([]byte("hunter2"), "f/_/x")
	if err != nil || !secrets.IsSealed(v) || strings.Contains(v, "hunter2") || !kr.SealedUnderCurrent(v) {
		t.Fatalf("seal: %q, %v", v, err)
	}
	again, created, err := secrets.LoadOrCreate(path)
	if err != nil || created || again.Current() != kr.Current() {
		t.Fatalf("load: %v, %v", created, err)
	}
	if p, err := again.Open(v, "f/_/x"); err != nil || string(p) != "hunter2" {
		t.Fatalf("open: %q, %v", p, err)
	}
	if _, err := again.Open(v, "f/_/y"); !errors.Is(err, secrets.ErrCorrupt) {
		t.Fatalf("open with another aad: %v", err)
	}
	old := kr.Current()
	id, err := kr.Rotate()
	if err != nil || id == old || kr.Current() != id || kr.SealedUnderCurrent(v) {
		t.Fatalf("rotate: %q, %v", id, err)
	}
	if p, err := kr.Open(v, "f/_/x"); err != nil || string(p) != "hunter2" {
		t.Fatalf("open under the old key during the rotation: %q, %v", p, err)
	}
	during, _, err := secrets.LoadOrCreate(path)
	if err != nil || during.Current() != id {
		t.Fatalf("the file during a rotation: %v", err)
	}
	if err := kr.Retire(); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Open(v, "f/_/x"); !errors.Is(err, secrets.ErrUnknownKey) {
		t.Fatalf("open under a retired key: %v", err)
	}
	if b, _ := os.ReadFile(path); strings.Contains(string(b), old) {
		t.Fatalf("the retired key is still in the file:\n%s", b)
	}
	if es, _ := os.ReadDir(filepath.Dir(path)); len(es) != 1 {
		t.Fatalf("%d entries beside the key file", len(es))
	}
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := secrets.LoadOrCreate(path); err == nil || !strings.Contains(err.Error(), "backup") {
		t.Fatalf("an empty key file: %v", err)
	}
}
