package httpclient_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgefaas/edgefaas/internal/egress"
	"github.com/edgefaas/edgefaas/internal/nodes"
	"github.com/edgefaas/edgefaas/internal/testing/storetest"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// anyHost lets functions grant themselves any host (the operator bound is
// tested in wasm/egress).
var anyHost = []string{"*"}

// rig is a single-box node whose worker's guests make their outbound
// requests through the HTTP-client actor (a supervised ergo process) and
// the egress policy.
type rig struct {
	engine *wasm.Engine
	policy *egress.Client
}

func newRig(t *testing.T, cfg egress.Config) *rig {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store := storetest.Open(t, filepath.Join(dir, "db"), log)
	c, err := nodes.StartCore(nodes.CoreConfig{
		Node:       nodes.NodeConfig{Cookie: "test", DataDir: dir, Log: log},
		Store:      store,
		WithWorker: &nodes.WorkerConfig{Egress: cfg},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	return &rig{c.LocalWorker().Engine, c.LocalWorker().Egress}
}

func (r *rig) invoke(t *testing.T, module, input string, hosts ...string) (json.RawMessage, error) {
	t.Helper()
	m, err := r.engine.Compile(context.Background(), testmodules.Read(t, module), wasm.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.engine.Invoke(context.Background(), m, wasm.Invocation{
		Function: "test/" + module, Input: []byte(input), AllowedHosts: hosts,
	})
	if err != nil {
		return nil, err
	}
	return res.Output, nil
}

func server(t *testing.T, h http.HandlerFunc) (url, hostport string) {
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL, strings.TrimPrefix(s.URL, "http://")
}

func TestAllowedHostThroughActor(t *testing.T) {
	hits := 0
	url, host := server(t, func(w http.ResponseWriter, r *http.Request) { hits++; w.Write([]byte("pong")) })
	r := newRig(t, egress.Config{AllowedNetworks: loopback, Grantable: anyHost})
	out, err := r.invoke(t, "network", `{"url":"`+url+`/x","count":3}`, host)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Requests []struct{ Status, Bytes int }
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Requests) != 3 || got.Requests[0].Status != 200 || got.Requests[0].Bytes != 4 || hits != 3 {
		t.Fatalf("output %s, %d hits", out, hits)
	}
	if n := r.policy.Count("http", "ok"); n != 3 {
		t.Fatalf("%d ok requests counted", n)
	}
}

func TestDenied(t *testing.T) {
	hits := 0
	url, host := server(t, func(w http.ResponseWriter, r *http.Request) { hits++ })
	_, port, _ := net.SplitHostPort(host)
	other, otherHost := server(t, func(w http.ResponseWriter, r *http.Request) { hits++ })
	redirect, redirectHost := server(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other, http.StatusFound)
	})
	_ = otherHost
	for _, tc := range []struct {
		name    string
		cfg     egress.Config
		url     string
		allowed []string
		want    string
	}{
		{"not on the allow-list", egress.Config{AllowedNetworks: loopback, Grantable: anyHost}, url, nil, "host not allowed for this function: " + host},
		{"loopback by IP", egress.Config{Grantable: anyHost}, url, []string{host}, "address not allowed: 127.0.0.1 is an internal address"},
		{"loopback by DNS name", egress.Config{Grantable: anyHost}, "http://localhost:" + port, []string{"localhost"}, "is an internal address"},
		{"redirect to a host not allowed", egress.Config{AllowedNetworks: loopback, Grantable: anyHost}, redirect, []string{redirectHost}, "host not allowed for this function: redirect to"},
		{"link-local by IP", egress.Config{AllowedNetworks: loopback, Grantable: anyHost}, "http://169.254.169.254/latest", []string{"169.254.169.254"}, "169.254.169.254 is an internal address"},
		{"not http", egress.Config{AllowedHosts: []string{"*"}}, "file:///etc/passwd", nil, "is not an http(s) URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.cfg)
			_, err := r.invoke(t, "network", `{"url":"`+tc.url+`","count":1}`, tc.allowed...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if n := r.policy.Count("http", "denied") + r.policy.Count("http", "error"); n != 1 {
				t.Fatalf("%d refusals counted", n)
			}
		})
	}
	if hits != 0 {
		t.Fatalf("a denied request reached a server %d times", hits)
	}
}

func TestTCPServerReply(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			line, _ := bufio.NewReader(c).ReadString('\n')
			c.Write([]byte("echo: " + line))
			c.Close()
		}
	}()
	r := newRig(t, egress.Config{AllowedNetworks: loopback, Grantable: anyHost})
	in := `{"address":"` + l.Addr().String() + `","message":"hi there"}`
	out, err := r.invoke(t, "server-reply", in, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"reply":"echo: hi there"}` {
		t.Fatalf("output %s", out)
	}
	if _, err := r.invoke(t, "server-reply", in); err == nil || !strings.Contains(err.Error(), "host not allowed") {
		t.Fatalf("without a grant: %v", err)
	}
}

// TestLegacyHTTPRequest: FunLess's __http_request works and never writes
// more than its guest buffer (1024 bytes) holds.
func TestLegacyHTTPRequest(t *testing.T) {
	url, host := server(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(strings.Repeat("x", 5000))) })
	r := newRig(t, egress.Config{AllowedNetworks: loopback, Grantable: anyHost})
	out, err := r.invoke(t, "test/legacyhttp", `"`+url+`"`, host)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != `{"status":200,"len":1024}` {
		t.Fatalf("output %s", out)
	}
	out, err = r.invoke(t, "test/legacyhttp", `"`+url+`"`)
	if err != nil || string(out) != `{"status":0,"len":0}` {
		t.Fatalf("denied legacy request: %s %v", out, err)
	}
}
