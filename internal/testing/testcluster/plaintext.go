package testcluster

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// FilesHolding lists the files under dir (a node's data directory: its
// stores' logs and tables read as bytes) that hold any of the markers, as
// "PATH holds MARKER", PATH relative to dir: how a test shows a secret is
// nowhere at rest in plain text. A file removed while it walks (a running
// node's store compacting) is passed over.
func FilesHolding(t testing.TB, dir string, markers ...string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		for _, m := range markers {
			if bytes.Contains(b, []byte(m)) {
				found = append(found, fmt.Sprintf("%s holds %q", rel, m))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
