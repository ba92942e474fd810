package budget

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/membudget"
	"github.com/edgefaas/edgefaas/internal/testing/attacks"
	"github.com/edgefaas/edgefaas/internal/testing/cgroupbox"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

func readCgroupInt(t *testing.T, dir, file string) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("parse %s: %v", file, err)
	}
	return v
}

// TestValidatorChildMemoryBounded: an upload whose validation needs far
// more than the validation child's share (256 MiB of locals in a 60-byte
// module) is refused 413, naming the memory bound, and the box's cgroup
// (which holds the core and its children) peaks at most the share plus
// slack above where it stood: the child was stopped at its bound, not at
// the address-space limit gigabytes later. The box lives on and accepts
// a real module after it.
func TestValidatorChildMemoryBounded(t *testing.T) {
	bomb := attacks.LocalsBomb(16, 16<<20)
	b := cgroupbox.Start(t, 1<<30)
	b.WaitNode(t)
	usage, peakFile := "memory.usage_in_bytes", "memory.max_usage_in_bytes"
	if b.Group.V2 {
		usage, peakFile = "memory.current", "memory.peak"
	}
	before := readCgroupInt(t, b.Group.Dir, usage)
	b.Group.ResetPeak()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	_, err := b.User.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: "bomb", Code: bomb})
	grew := readCgroupInt(t, b.Group.Dir, peakFile) - before
	t.Logf("%d-byte module: %v; the box's cgroup grew %.1f MiB at its peak", len(bomb), err, float64(grew)/(1<<20))
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 413 || !strings.Contains(err.Error(), "memory bound") {
		t.Errorf("upload: %v, want 413 naming the validator's memory bound", err)
	}
	const slack = 24 << 20
	if bound := membudget.ValidatorChild + 4*int64(len(bomb)); grew > bound+slack {
		t.Errorf("the box grew %d MiB validating it; the child's bound is %d MiB (+%d MiB slack)", grew>>20, bound>>20, slack>>20)
	}
	if _, err := b.User.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: "hello", Code: testmodules.Read(t, "hello")}); err != nil {
		t.Fatalf("a real module after the bomb: %v (OOM kills: %s)", err, b.OOMKills())
	}
}
