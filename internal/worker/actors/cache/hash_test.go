package cache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/edgefaas/edgefaas/internal/wasm"
)

// TestHostileHashTouchesNoFile: a hash from the wire such as "../../x"
// used to become a path (dir/../../x.wasm): Get read that file and, its
// content not matching, removed it; Evict removed it outright.
func TestHostileHashTouchesNoFile(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	dir := filepath.Join(root, "a", "b")
	victim := filepath.Join(root, "x.wasm")
	if err := os.WriteFile(victim, []byte("not yours"), 0o600); err != nil {
		t.Fatal(err)
	}
	eng, err := wasm.NewEngine(ctx, wasm.Config{Interpreter: true})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close(ctx)
	s, err := NewStore(eng, dir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"../../x", "../../x\x00", "/etc/passwd", ""} {
		if _, err := s.Get(ctx, h, wasm.Limits{}); !errors.Is(err, ErrBadHash) {
			t.Errorf("Get(%q) = %v, want ErrBadHash", h, err)
		}
		if _, err := os.Stat(victim); err != nil {
			t.Fatalf("Get(%q) removed a file outside the code directory: %v", h, err)
		}
		s.Evict(ctx, h)
		if _, err := os.Stat(victim); err != nil {
			t.Fatalf("Evict(%q) removed a file outside the code directory: %v", h, err)
		}
	}
}

func TestValidHash(t *testing.T) {
	good := wasm.Hash([]byte("x"))
	cases := map[string]bool{
		good:                true,
		good[:63]:           false,
		good + "0":          false,
		"../../x":           false,
		"ABCDEF" + good[6:]: false, // uppercase is not what wasm.Hash makes
		"g" + good[1:]:      false,
		"../" + good[3:]:    false,
		"":                  false,
	}
	for h, want := range cases {
		if got := ValidHash(h); got != want {
			t.Errorf("ValidHash(%q) = %v, want %v", h, got, want)
		}
	}
}
