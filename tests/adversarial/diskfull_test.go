package adversarial

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/attacks"
	"github.com/edgefaas/edgefaas/internal/testing/cgroupbox"
	"github.com/edgefaas/edgefaas/internal/testing/diskfill"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestDiskFull: the single box's data directory is a 48 MiB tmpfs the test
// mounts. The guest user uploads 1 MiB functions until the core refuses
// one; the refusal must be a 507, not a hang nor a crash. Then another
// program (the test) takes nearly all the space left: an asynchronous call
// and an upload are refused with 507 too, while the neighbour's hello is
// answered throughout and the core logs the change once. The other
// program lets go, two of the guest's functions are deleted, the space
// comes back and uploads are accepted again, without a restart. Last, the
// disk is filled again to the last block (uploads, then the other
// program), the box is killed -9 and restarted on the full disk: it
// starts, serves the neighbour, answers an upload, and every acknowledged
// upload is still there.
func TestDiskFull(t *testing.T) {
	const (
		diskBytes = 48 << 20
		padBytes  = 1 << 20
		most      = 64 // uploads to try: twice what fits
	)
	disk, err := diskfill.Tmpfs(t, diskBytes)
	if err != nil {
		t.Skipf("the data directory: %v", err)
	}
	b := cgroupbox.StartOn(t, Limit, filepath.Join(disk, "core"))
	b.WaitNode(t)
	n := newNeighbour(t, b)
	echo := testmodules.Read(t, "test/echo")

	acked := map[string]bool{} // functions the core acknowledged and still has
	seq := 0
	// fill uploads padded functions until one is refused, and returns the
	// refusal: every answer before must be a 201.
	fill := func() *client.Error {
		t.Helper()
		for range most {
			seq++
			name := fmt.Sprintf("fill%d", seq)
			err := upload(b.User, name, attacks.Padded(echo, padBytes))
			if err == nil {
				acked[name] = true
				continue
			}
			var ce *client.Error
			if !errors.As(err, &ce) {
				t.Fatalf("upload %s with %d functions stored: not answered: %v (free %d bytes)", name, len(acked), err, diskfill.Free(t, disk))
			}
			return ce
		}
		t.Fatalf("%d uploads of %d MiB all fit a %d MiB disk", most, padBytes>>20, diskBytes>>20)
		return nil
	}

	stop := n.During()
	refusal := fill()
	t.Logf("%d uploads of %d MiB stored; then %d %s (free %d bytes)", len(acked), padBytes>>20, refusal.Status, refusal.Detail, diskfill.Free(t, disk))
	if refusal.Status != http.StatusInsufficientStorage {
		t.Fatalf("the upload that did not fit: %d %s; want 507", refusal.Status, refusal.Detail)
	}

	// Another program takes all but 512 KiB: below any floor.
	filler := filepath.Join(disk, "filler")
	diskfill.FillTo(t, filler, disk, 512<<10)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	_, err = b.User.InvokeAsync(ctx, client.DefaultModule, "fill1", json.RawMessage(`{}`), "")
	wantStatus(t, "an asynchronous call on a full disk", err, http.StatusInsufficientStorage)
	wantStatus(t, "a small upload on a full disk", upload(b.User, "small", echo), http.StatusInsufficientStorage)
	if status, sent := uploadExpecting(t, b, "continued", attacks.Padded(echo, padBytes)); status != http.StatusInsufficientStorage || sent != 0 {
		t.Errorf("an upload with Expect: 100-continue on a full disk: %d after %d body bytes sent; want 507 before the body", status, sent)
	}
	if _, err := b.User.GetFunction(ctx, client.DefaultModule, "fill1"); err != nil {
		t.Errorf("reading a function on a full disk: %v", err)
	}
	if refused := metric(t, b, "edgefaas_storage_writes_refused_total"); refused < 4 {
		t.Errorf("edgefaas_storage_writes_refused_total %v after four refusals", refused)
	}
	if full := metric(t, b, "edgefaas_storage_disk_full"); full != 1 {
		t.Errorf("edgefaas_storage_disk_full %v on a full disk", full)
	}

	// The other program lets go; deletes free the guest's space.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	before := diskfill.Free(t, disk)
	for _, name := range []string{"fill1", "fill2"} {
		if err := b.User.DeleteFunction(ctx, client.DefaultModule, name); err != nil {
			t.Fatalf("delete %s on a full disk: %v", name, err)
		}
		delete(acked, name)
	}
	wait.ForState(t, time.Minute, "the deletes free space", func() (bool, string) {
		now := diskfill.Free(t, disk)
		return now >= before+padBytes, fmt.Sprintf("free %d bytes, %d before the deletes", now, before)
	})
	// The worker drops its copies of the deleted code after the answer,
	// so the room may come a moment later: poll, every refusal a 507.
	after := attacks.Padded(echo, padBytes)
	wait.ForState(t, time.Minute, "an upload is accepted after the deletes", func() (bool, string) {
		err := upload(b.User, "after", after)
		var ce *client.Error
		if err != nil && (!errors.As(err, &ce) || ce.Status != http.StatusInsufficientStorage) {
			t.Fatalf("upload after the deletes: %v", err)
		}
		return err == nil, fmt.Sprintf("%v (free %d bytes)", err, diskfill.Free(t, disk))
	})
	acked["after"] = true
	if full := metric(t, b, "edgefaas_storage_disk_full"); full != 0 {
		t.Errorf("edgefaas_storage_disk_full %v after an upload was accepted", full)
	}
	got := stop()
	t.Logf("neighbour: %d ok, %d other", got.OK, len(got.Wrong))
	if len(got.Wrong) > 0 || got.OK == 0 {
		t.Errorf("the neighbour while the disk filled: %d ok, wrong %v", got.OK, got.Wrong)
	}
	log := b.Proc.Log()
	// A compaction may free space between two refusals, so the state can
	// change a few times; what must not happen is a line per write.
	if full, freed := count(log, "disk full: refusing writes"), count(log, "writes accepted again"); full < 1 || full > 3 || freed < 1 || freed > 3 {
		t.Errorf("the log says %d times that the disk is full and %d times that writes are accepted again; want 1-3 each", full, freed)
	}
	// A compaction after a delete may still meet ENOSPC and say so; a
	// flood (a line per retry) is what must not happen.
	if floods := count(log, "no space left on device"); floods > 3 {
		t.Errorf("the log has %d lines with ENOSPC", floods)
	}

	// Nearly full again, then kill -9 and restart.
	refusal = fill()
	if refusal.Status != http.StatusInsufficientStorage {
		t.Fatalf("refilling: %d %s; want 507", refusal.Status, refusal.Detail)
	}
	// And the other program takes the rest, so only the reserve is left.
	diskfill.FillTo(t, filler, disk, 0)
	t.Logf("refilled: %d functions, free %d bytes", len(acked), diskfill.Free(t, disk))
	b.Proc.Process.Kill()
	b.Proc.Restart()
	b.Proc.WaitLog(testcluster.ListeningRE, 2*time.Minute)
	b.WaitNode(t)
	stop = n.During()
	for name := range acked {
		if _, err := b.User.GetFunction(ctx, client.DefaultModule, name); err != nil {
			t.Errorf("acknowledged function %s after the restart: %v", name, err)
		}
	}
	// An upload is answered: 201 if opening the database freed enough
	// (pebble drops its obsolete logs and tables), else 507.
	err = upload(b.User, "restarted", attacks.Padded(echo, padBytes))
	var ce *client.Error
	if err != nil && (!errors.As(err, &ce) || ce.Status != http.StatusInsufficientStorage) {
		t.Errorf("an upload after the restart on a full disk: %v; want 201 or 507", err)
	}
	t.Logf("after the restart: upload answered %v (free %d bytes)", err, diskfill.Free(t, disk))
	got = stop()
	if len(got.Wrong) > 0 || got.OK == 0 {
		t.Errorf("the neighbour after the restart: %d ok, wrong %v", got.OK, got.Wrong)
	}
	if kills := b.OOMKills(); kills != "0" {
		t.Errorf("OOM kills in the cgroup: %s", kills)
	}
}

// upload stores code as the function name in the default module.
func upload(c *client.Client, name string, code []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	_, err := c.CreateFunction(ctx, client.DefaultModule, client.Upload{Name: name, Code: code})
	return err
}

// uploadExpecting uploads code as the guest with "Expect: 100-continue"
// and returns the answer's status and how many body bytes the client sent.
func uploadExpecting(t *testing.T, b *cgroupbox.Box, name string, code []byte) (status int, sent int64) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("name", name)
	fw, _ := mw.CreateFormFile("code", name+".wasm")
	fw.Write(code)
	mw.Close()
	cr := &countingReader{r: &body}
	req, err := http.NewRequest(http.MethodPost, b.URL+"/v1/fn/_", cr)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = int64(body.Len())
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+b.Guest)
	req.Header.Set("Expect", "100-continue")
	// The client waits for the server's word before it sends the body;
	// the wait is long, so the test sees the server's choice, not a timer.
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{ExpectContinueTimeout: 30 * time.Second}}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("upload with Expect: 100-continue: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, cr.n.Load()
}

type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// wantStatus checks that err is the API's answer with status.
func wantStatus(t *testing.T, what string, err error, status int) {
	t.Helper()
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != status {
		t.Errorf("%s: %v; want %d", what, err, status)
		return
	}
	if !strings.Contains(ce.Detail, "disk") {
		t.Errorf("%s: %d %q does not say the disk is full", what, ce.Status, ce.Detail)
	}
}

// metric reads one series from the box's /metrics.
func metric(t *testing.T, b *cgroupbox.Box, series string) float64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, b.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+b.AdminToken)
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	return readMetric(t, resp.Body, series)
}

// count is how many lines of log contain s.
func count(log, s string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}
