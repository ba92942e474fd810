package adversarial

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/cgroupbox"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

// compiledFiles lists the box's compile cache entries on disk.
func compiledFiles(t *testing.T, b *cgroupbox.Box) map[string]bool {
	t.Helper()
	files := map[string]bool{}
	filepath.WalkDir(b.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.Contains(path, string(filepath.Separator)+"compiled"+string(filepath.Separator)) {
			files[path] = true
		}
		return nil
	})
	return files
}

// TestCompileCacheCorrupt: the compile cache entries of two functions are
// damaged on disk while the box is down, one with bytes flipped, one
// truncated (bit rot, a full disk, a crash). After the restart both
// functions answer as before, and their entries are written anew; nothing
// is OOM-killed and the neighbour is answered throughout.
func TestCompileCacheCorrupt(t *testing.T) {
	b := cgroupbox.Start(t, Limit)
	b.WaitNode(t)
	n := newNeighbour(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	type victim struct {
		name, module, args, want string
		entry                    string
		original                 []byte
		damage                   func([]byte) []byte
	}
	victims := []*victim{
		{name: "flipped", module: "test/echo", args: `{"x":"echo"}`, want: `"x":"echo"`, damage: func(raw []byte) []byte {
			for _, at := range []int{len(raw) / 2, len(raw) / 3} { // in the machine code
				raw[at] ^= 0xff
			}
			return raw
		}},
		{name: "truncated", module: "hello-c", args: `{"name":"cache"}`, want: "Hello, cache!", damage: func(raw []byte) []byte {
			return raw[:len(raw)/2]
		}},
	}
	call := func(v *victim) string {
		t.Helper()
		out, err := b.User.Invoke(ctx, client.DefaultModule, v.name, json.RawMessage(v.args))
		if err != nil {
			t.Fatalf("calling %s: %v (OOM kills: %s)", v.name, err, b.OOMKills())
		}
		return string(out)
	}
	for _, v := range victims {
		before := compiledFiles(t, b)
		if _, err := b.User.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: v.name, Code: testmodules.Read(t, v.module)}); err != nil {
			t.Fatalf("upload: %v", err)
		}
		if out := call(v); !strings.Contains(out, v.want) {
			t.Fatalf("%s answered %s before the damage", v.name, out)
		}
		for p := range compiledFiles(t, b) {
			if !before[p] {
				v.entry = p
			}
		}
		if v.entry == "" {
			t.Fatalf("no compile cache entry appeared for %s", v.name)
		}
	}

	b.Proc.Process.Kill()
	for _, v := range victims {
		raw, err := os.ReadFile(v.entry)
		if err != nil {
			t.Fatal(err)
		}
		v.original = bytes.Clone(raw)
		if err := os.WriteFile(v.entry, v.damage(raw), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b.Proc.Restart()
	b.Proc.WaitLog(testcluster.ListeningRE, 2*time.Minute)
	b.WaitNode(t)

	stop := n.During()
	for _, v := range victims {
		out := call(v)
		if !strings.Contains(out, v.want) {
			t.Errorf("%s answered %s after its cache entry was damaged", v.name, out)
		}
	}
	got := stop()
	for _, v := range victims {
		raw, err := os.ReadFile(v.entry)
		if err != nil {
			t.Errorf("the entry of %s was not written again: %v", v.name, err)
			continue
		}
		if len(raw) != len(v.original) {
			t.Errorf("the entry of %s is %d bytes; it was %d before the damage", v.name, len(raw), len(v.original))
		}
	}
	t.Logf("neighbour %d ok, %d other", got.OK, len(got.Wrong))
	if kills := b.OOMKills(); kills != "0" {
		t.Fatalf("OOM kills in the cgroup: %s", kills)
	}
	if len(got.Wrong) > 0 || got.OK == 0 {
		t.Errorf("the neighbour: %d ok, wrong %v", got.OK, got.Wrong)
	}
}
