package reliability_test

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ergo-services/ergo/lib"

	"github.com/edgefaas/edgefaas/http/client"

	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestRefusalLogRateLimited: every 401 used to write a log line, so any
// client could write the core's log as fast as it sent requests. 500
// unauthenticated requests now write at most the burst plus the refill
// over the test's own duration; the rest are counted.
func TestRefusalLogRateLimited(t *testing.T) {
	core := testcluster.StartCore(t)
	const n = 500
	start := core.Log()
	before := strings.Count(start, `msg="request refused"`)
	for range n {
		req, _ := http.NewRequest("GET", core.URL+"/v1/fn", nil)
		req.Header.Set("Authorization", "Bearer not-a-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", resp.StatusCode)
		}
	}
	var logged, suppressed int
	wait.Until(context.Background(), 10*time.Second, "every refusal logged or counted", func() bool {
		logged = strings.Count(core.Log(), `msg="request refused"`) - before
		suppressed = int(core.Metric(t, "edgefaas_http_refusal_logs_suppressed_total"))
		return logged+suppressed >= n
	})
	t.Logf("%d refusals: %d logged, %d suppressed", n, logged, suppressed)
	if logged+suppressed != n {
		t.Fatalf("%d logged + %d suppressed != %d refusals", logged, suppressed, n)
	}
	// Burst 10, 1 a second: 500 requests would need ~8 minutes to all be
	// logged; a fifth of them is a bound no run of this loop reaches.
	if logged > n/5 {
		t.Fatalf("%d of %d refusals logged: not rate limited", logged, n)
	}
}

var fingerprintRE = regexp.MustCompile(`msg="API TLS: [^"]*" fingerprint=([0-9a-f]{64})`)

// TestAPIHTTPS: `edgefaas core --http-tls on` (the default on a
// non-loopback address, which a test may not bind) serves HTTPS with a
// self-signed certificate whose fingerprint it logs; the CLI pins it. A
// bearer token never crosses the wire in clear: plain HTTP is refused.
func TestAPIHTTPS(t *testing.T) {
	core := testcluster.StartCore(t, "--http-tls", "on")
	fp := core.WaitLog(fingerprintRE, 10*time.Second)[1]
	url := strings.Replace(core.URL, "http://", "https://", 1)
	cli := func(args ...string) (string, error) {
		cmd := exec.Command(testcluster.Binary(t), append([]string{"--host", url, "--token", core.Guest}, args...)...)
		cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir())
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := cli("fn", "list", "--tls-fingerprint", fp); err != nil {
		t.Fatalf("pinned CLI: %v\n%s", err, out)
	}
	if out, err := cli("fn", "list", "--tls-fingerprint", strings.Repeat("0", 64)); err == nil || !strings.Contains(out, "fingerprint") {
		t.Fatalf("CLI with a wrong pin: %v\n%s", err, out)
	}
	if out, err := cli("fn", "list"); err == nil {
		t.Fatalf("CLI without pin or CA accepted the self-signed certificate:\n%s", out)
	}
	if out, err := cli("fn", "list", "--ca-file", filepath.Join(core.Dir, "core", "http-tls", "cert.pem")); err != nil {
		t.Fatalf("CLI trusting the certificate as CA: %v\n%s", err, out)
	}
	resp, err := http.Get(core.URL + "/healthz")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered 200 on the HTTPS listener")
		}
	}
}

// mitm is a TLS-terminating relay: it accepts the worker's TLS with its
// own certificate and opens its own TLS to the core, then copies bytes,
// so ergo's cookie challenge passes through it unchanged.
type mitm struct {
	addr    string
	relayed atomic.Int64 // bytes from the core delivered to the worker
}

func startMITM(t *testing.T, target string) *mitm {
	t.Helper()
	cert, err := lib.GenerateSelfSignedCert("mitm", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	m := &mitm{addr: l.Addr().String()}
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer in.Close()
				out, err := tls.Dial("tcp", target, &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true})
				if err != nil {
					return
				}
				defer out.Close()
				go io.Copy(out, in)
				n, _ := io.Copy(in, out)
				m.relayed.Add(n)
			}()
		}
	}()
	return m
}

// TestNodeMITMRefused: node TLS without an operator CA used to verify
// nothing, so a man in the middle terminating TLS on both sides relayed
// ergo's cookie challenge and the worker joined through it (then the
// MITM could read and inject Invoke, Cache, Evict). With the cookie's CA
// the worker refuses the MITM's certificate; the same worker joining
// directly is listed (the setup is right).
func TestNodeMITMRefused(t *testing.T) {
	core := testcluster.StartCore(t, "--node-join", "any") // the cookie's CA: a site moving to tokens
	m := startMITM(t, core.NodeAddr)
	_, port, _ := net.SplitHostPort(m.addr)
	w := testcluster.Start(t, t.TempDir(), "worker", "--data-dir", filepath.Join(t.TempDir(), "w"), "--node-addr", "127.0.0.2:0",
		"--join", "core@127.0.0.1:"+port, "--cookie-file", core.CookieFile())
	// A worker reports every second: five reports' worth of time. This
	// proves an absence (the worker never listed), which nothing signals.
	wait.Until(context.Background(), 5*time.Second, "the worker listed", func() bool {
		ns, err := core.Client(core.Admin).ListNodes(ctxT(t))
		if err == nil && testcluster.Has(ns, "worker@127.0.0.2") {
			t.Fatalf("the worker joined through the man in the middle (%d bytes relayed)", m.relayed.Load())
		}
		return false
	})
	// Which side logs the refusal depends on which handshake fails first:
	// the worker refusing the MITM's certificate, or the core refusing the
	// MITM's own (the worker then sees the link close).
	if !strings.Contains(w.Log(), "cluster CA") && !strings.Contains(core.Log(), "cluster CA") {
		t.Errorf("neither the worker's nor the core's log says why the MITM was refused:\n%s\n%s", lastLines(w.Log(), 5), lastLines(core.Log(), 5))
	}
	t.Logf("MITM refused; relayed %d bytes; worker log: %s", m.relayed.Load(), lastLines(w.Log(), 2))
	w.Kill()
	core.StartWorker(t, "127.0.0.3")
	core.WaitWorkers(t, func(ns []client.Node) bool { return testcluster.Has(ns, "worker@127.0.0.3") })
}
