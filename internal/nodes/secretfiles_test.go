package nodes

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

// TestSecretFilesReplacedByRename: the cookie and the metrics token are
// written as a new file renamed over the old (syncfile), never by
// truncating the file in place, so a crash cannot leave them empty. An
// empty file (what an in-place write could leave) is replaced, and the
// directory holds nothing else afterwards.
func TestSecretFilesReplacedByRename(t *testing.T) {
	for name, load := range map[string]func(string) (string, bool, error){
		"cookie":         LoadOrCreateCookie,
		MetricsTokenFile: LoadOrCreateMetricsToken,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			torn := inode(t, path)
			secret, created, err := load(dir)
			if err != nil || !created || len(secret) < 32 {
				t.Fatalf("over an empty file: %q, created %v, %v", secret, created, err)
			}
			if inode(t, path) == torn {
				t.Error("the file was rewritten in place, not replaced by a rename")
			}
			if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
				t.Errorf("mode %v", st.Mode())
			}
			again, created, err := load(dir)
			if err != nil || created || again != secret {
				t.Errorf("second load: %q, created %v, %v; want %q", again, created, err, secret)
			}
			if es, _ := os.ReadDir(dir); len(es) != 1 {
				t.Errorf("directory holds %d entries", len(es))
			}
		})
	}
}
