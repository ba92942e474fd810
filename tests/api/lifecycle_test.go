package api_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestDurability kills the core with SIGKILL right after the last 201 and
// checks that a fresh process finds every acknowledged change.
func TestDurability(t *testing.T) {
	dir := t.TempDir()
	c := startCore(t, dir, nil)
	sub := c.createSubject("dana")
	c.createModule(sub, "dur")
	const n = 20
	want := map[string]fnRecord{}
	for i := 0; i < n; i++ {
		name := fmt.Sprintf("f%d", i)
		code := variant(echoWasm, i)
		if i%2 == 1 {
			code = variant(helloWasm, i)
		}
		// capacity ≥ 3 MiB: the Go module declares 42 pages (the API refuses less)
		want[name] = c.createFunction(sub, "dur", name, code, fmt.Sprintf(`{"tag":"t%d","capacity":%d}`, i, 3+i))
	}
	// An update and a delete are acknowledged too.
	r := c.upload("PUT", "/v1/fn/dur/f0", sub, field{name: "metadata", value: `{"tag":"updated"}`})
	if r.status != http.StatusOK {
		t.Fatalf("update: %d %s", r.status, r.body)
	}
	var upd fnRecord
	r.data(t, &upd)
	want["f0"] = upd
	if r := c.json("DELETE", "/v1/fn/dur/f1", sub, ""); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	delete(want, "f1")
	c.kill()

	c2 := startCore(t, dir, nil)
	if c2.admin != c.admin {
		t.Error("tokens changed across the crash")
	}
	for name, w := range want {
		var got fnRecord
		r := c2.json("GET", "/v1/fn/dur/"+name, sub, "")
		if r.status != http.StatusOK {
			t.Errorf("%s after SIGKILL: %d %s", name, r.status, r.body)
			continue
		}
		r.data(t, &got)
		if got.Hash != w.Hash || got.Version != w.Version || got.ABI != w.ABI || got.Size != w.Size ||
			got.Metadata.Tag != w.Metadata.Tag || got.Metadata.Capacity != w.Metadata.Capacity || !got.UpdatedAt.Equal(w.UpdatedAt) {
			t.Errorf("%s after SIGKILL = %+v, acknowledged %+v", name, got, w)
		}
	}
	expect(t, "deleted function after SIGKILL", c2.json("GET", "/v1/fn/dur/f1", sub, ""), http.StatusNotFound, "does not exist")
	if got := c2.metric("edgefaas_code_blobs"); got != fmt.Sprint(n-1) {
		t.Errorf("code blobs after SIGKILL = %s, want %d", got, n-1)
	}
}

// TestGracefulShutdown sends SIGTERM while an upload is in flight: the
// upload completes with 201, the process exits 0, and the function is there
// after a restart.
func TestGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	c := startCore(t, dir, nil)
	ct, body := form(field{name: "name", value: "late"}, field{name: "code", value: string(echoWasm), file: true})
	raw := body.Bytes()
	half := len(raw) / 2

	conn, err := net.Dial("tcp", strings.TrimPrefix(c.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/fn/_ HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n",
		c.guest, ct, len(raw))
	br := bufio.NewReader(conn)
	// The server sends 100 Continue when the handler starts reading the
	// body: from then on the request is in flight.
	line, err := br.ReadString('\n')
	if err != nil || !strings.Contains(line, "100") {
		t.Fatalf("expected 100 Continue, got %q %v", line, err)
	}
	if _, err := br.ReadString('\n'); err != nil { // blank line after 100
		t.Fatal(err)
	}
	if _, err := conn.Write(raw[:half]); err != nil {
		t.Fatal(err)
	}
	if err := c.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(raw[half:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("in-flight upload got no answer: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("in-flight upload: %d %s", resp.StatusCode, b)
	}
	if err := c.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, c.stderr)
	}
	if !strings.Contains(c.stderr.String(), "stopped") {
		t.Errorf("no clean stop in the log:\n%s", c.stderr)
	}
	c2 := startCore(t, dir, nil) // also proves pebble's lock was released
	expect(t, "function uploaded during shutdown", c2.json("GET", "/v1/fn/_/late", c2.guest, ""), http.StatusOK, "")
}

// TestFlagsAndEnvironment checks that EDGEFAAS_* variables configure the
// core and that an explicit flag wins over them.
func TestFlagsAndEnvironment(t *testing.T) {
	envDir := t.TempDir()
	flagDir := t.TempDir()
	// Environment only.
	c := startCore(t, envDir, []string{"EDGEFAAS_DATA_DIR=" + envDir, "EDGEFAAS_HTTP_ADDR=127.0.0.1:0"}, "--max-upload-bytes", "4096")
	r := c.upload("POST", "/v1/fn/_", c.guest, field{name: "name", value: "big"}, field{name: "code", value: string(helloWasm), file: true})
	expect(t, "--max-upload-bytes", r, http.StatusRequestEntityTooLarge, "4096")
	c.stop()
	// The flag wins over the variable.
	c = startCore(t, flagDir, []string{"EDGEFAAS_DATA_DIR=" + envDir, "EDGEFAAS_MAX_UPLOAD_BYTES=4096"},
		"--data-dir", flagDir, "--http-addr", "127.0.0.1:0", "--max-upload-bytes", "1000000")
	c.createFunction(c.guest, "_", "big", helloWasm, "")
	c.stop()
	envTokens, _ := os.ReadFile(filepath.Join(envDir, "tokens"))
	flagTokens, _ := os.ReadFile(filepath.Join(flagDir, "tokens"))
	if len(flagTokens) == 0 || bytes.Equal(envTokens, flagTokens) {
		t.Error("--data-dir did not win over EDGEFAAS_DATA_DIR")
	}
	// A bad variable is reported, not ignored.
	out, err := execCore(t, []string{"EDGEFAAS_MAX_UPLOAD_BYTES=lots", "EDGEFAAS_DATA_DIR=" + t.TempDir(), "EDGEFAAS_HTTP_ADDR=127.0.0.1:0"})
	if err == nil || !strings.Contains(out, "EDGEFAAS_MAX_UPLOAD_BYTES") {
		t.Errorf("bad variable: err %v, output %s", err, out)
	}
}
