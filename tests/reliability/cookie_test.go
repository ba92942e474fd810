package reliability_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
)

// TestWeakCookieRefused: a core or worker given the placeholder cookie of
// deploy/kubernetes, or a short one, exits at start and says why, before
// it listens.
func TestWeakCookieRefused(t *testing.T) {
	placeholder := filepath.Join(t.TempDir(), "cookie")
	if err := os.WriteFile(placeholder, []byte("CHANGE-ME-use-openssl-rand-hex-32\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, role, flag, value string }{
		{"placeholder", "core", "--cookie", "CHANGE-ME-use-openssl-rand-hex-32"},
		{"placeholder file", "core", "--cookie-file", placeholder},
		{"short", "core", "--cookie", "s3cret"},
		{"changeme", "core", "--cookie", "changemechangemechangemechangeme"},
		{"worker placeholder", "worker", "--cookie-file", placeholder},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{tc.role, "--data-dir", filepath.Join(dir, "data"), "--node-addr", "127.0.0.1:0", tc.flag, tc.value}
			if tc.role == "core" {
				args = append(args, "--http-addr", "127.0.0.1:0")
			} else {
				args = append(args, "--join", "127.0.0.1:1")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, testcluster.Binary(t), args...)
			cmd.Env = testcluster.Environ(false, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || ctx.Err() != nil {
				t.Fatalf("%s ran on with a weak cookie (%v):\n%s", tc.role, err, out.String())
			}
			if !strings.Contains(out.String(), "cookie") || !strings.Contains(out.String(), "openssl rand -hex 32") {
				t.Errorf("the refusal does not say what to do:\n%s", out.String())
			}
		})
	}
}

// TestEmptyCookieFileReplaced: a cookie file left empty by a power cut
// during the first boot (before writes were crash-safe) is not taken as
// the cookie: the core makes a new one, written whole, and starts.
func TestEmptyCookieFileReplaced(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "core")
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "cookie"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	p := testcluster.Start(t, dir, "core", "--data-dir", data, "--http-addr", "127.0.0.1:0", "--node-addr", "127.0.0.1:0")
	p.WaitLog(testcluster.ListeningRE, 60*time.Second)
	b, err := os.ReadFile(filepath.Join(data, "cookie"))
	if c := strings.TrimSpace(string(b)); err != nil || len(c) < 32 {
		t.Fatalf("cookie %q, %v", c, err)
	}
}
