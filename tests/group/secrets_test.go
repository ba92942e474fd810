package group_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestGroupSharesSecretsKey: a function whose webhook sink carries a
// signing secret, a header and a URL query, and whose MQTT trigger a
// password, is created through a follower. Every core reads it and
// delivers its results with the secrets intact; no core's data
// directory (the Raft log, its snapshots, the store) holds a secret in
// plain text; every core seals under one key, the group's. With the
// leader killed, a rotation through a survivor makes a new key current on
// every core, the survivors deliver under it, and the killed core,
// restarted, takes the new key from the log and delivers too.
func TestGroupSharesSecretsKey(t *testing.T) {
	disk := dataDisk(t)
	g := startGroupOn(t, func(host string) string { return filepath.Join(disk, host) },
		"--egress-allow", "127.0.0.1", "--allow-net", "127.0.0.1/32", "--sink-retry-first", "200ms", "--sink-retry-max", "1s")
	g.startWorker(t, "127.0.0.4")
	h := &hook{}
	addr := "127.0.0.1:" + testcluster.Port(t, "127.0.0.1")
	h.serve(t, addr)
	marker := func(prefix string) string {
		b := make([]byte, 8)
		rand.Read(b)
		return prefix + hex.EncodeToString(b)
	}
	secret, header, query, password := marker("whs-"), marker("hdr-"), marker("qry-"), marker("mqp-")
	markers := []string{secret, header, query, password}

	lead := g.leader(t, nil)
	follower := g.others(lead)[0]
	if _, err := settled(t, func(ctx context.Context) error {
		err := g.client(t, lead).CreateModule(ctx, "demo")
		if client.IsStatus(err, http.StatusConflict) {
			return nil
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	no := false
	up := client.Upload{Name: "hooked", Code: testmodules.Read(t, "test/echo"), WaitForWorkers: &no,
		Sinks: json.RawMessage(fmt.Sprintf(`[{"type":"webhook","params":{"url":"http://%s/in?token=%s","secret":%q,"headers":{"X-Token":%q}}}]`,
			addr, query, secret, header)),
		Events: json.RawMessage(fmt.Sprintf(`[{"type":"mqtt","params":{"host":"127.0.0.1","port":"1","topic":"in","username":"u","password":%q}}]`, password))}
	if retried, err := settled(t, func(ctx context.Context) error {
		_, err := g.client(t, follower).CreateFunction(ctx, "demo", up)
		return err
	}); err != nil && !(retried && client.IsStatus(err, http.StatusConflict)) {
		t.Fatalf("create through the follower %s: %v", follower.host, err)
	}

	// deliversThrough invokes the function through m and checks that the
	// delivery carries every secret of the sink.
	deliversThrough := func(m *member, tag string) {
		t.Helper()
		cl := g.client(t, m)
		wait.ForState(t, 60*time.Second, "hooked answers through "+m.host, func() (bool, string) {
			_, err := cl.Invoke(ctxT(t, 30*time.Second), "demo", "hooked", json.RawMessage(fmt.Sprintf(`{"tag":%q}`, tag)))
			return err == nil, fmt.Sprint(err)
		})
		d := h.delivered(t, tag)
		if d.header != header || d.query != query {
			t.Errorf("delivery through %s: header %q, query %q; want %q, %q", m.host, d.header, d.query, header, query)
		}
		if err := client.VerifyWebhook(secret, d.sig, d.body, client.WebhookTolerance, time.Now()); err != nil {
			t.Errorf("delivery through %s: signature %q: %v", m.host, d.sig, err)
		}
	}
	for _, m := range g.cores {
		cl := g.client(t, m)
		wait.ForState(t, 60*time.Second, "hooked read through "+m.host, func() (bool, string) {
			_, err := cl.GetFunction(ctxT(t, 10*time.Second), "demo", "hooked")
			return err == nil, fmt.Sprint(err)
		})
		deliversThrough(m, "first-"+m.host)
	}
	plainAtRest(t, g.cores, markers)
	if keys := currentKeys(t, g.cores); len(keys) != 1 {
		t.Errorf("the cores seal under different keys: %v", keys)
	}

	// The leader is killed; a rotation through a survivor reaches both.
	lead.Kill()
	live := g.others(lead)
	var rot client.SecretsKeyRotation
	if _, err := settled(t, func(ctx context.Context) error {
		var err error
		rot, err = g.client(t, live[0]).RotateSecretsKey(ctx)
		return err
	}); err != nil {
		t.Fatalf("rotate through %s: %v", live[0].host, err)
	}
	wait.ForState(t, 30*time.Second, "the survivors seal under the rotated key "+rot.KeyID, func() (bool, string) {
		keys := currentKeys(t, live)
		return len(keys) == 1 && keys[rot.KeyID] != nil, fmt.Sprint(keys)
	})
	for _, m := range live {
		deliversThrough(m, "rotated-"+m.host)
	}

	// The killed core restarts, applies the rotation from the log and
	// delivers under the new key.
	from := lead.Process.Log.Len()
	lead.Restart()
	if _, err := lead.Process.WaitLog(testcluster.ListeningRE, from, 60*time.Second); err != nil {
		t.Fatalf("the killed core does not listen again: %v", err)
	}
	wait.ForState(t, 30*time.Second, "the restarted core seals under "+rot.KeyID, func() (bool, string) {
		keys := currentKeys(t, []*member{lead})
		return keys[rot.KeyID] != nil, fmt.Sprint(keys)
	})
	deliversThrough(lead, "restarted-"+lead.host)
	plainAtRest(t, g.cores, markers)
	t.Logf("rotation through %s: key %s, %d records sealed again", live[0].host, rot.KeyID, rot.Resealed)
}

// plainAtRest fails t for every file of the cores' data directories (the
// Raft log, snapshots, the store) that holds a marker.
func plainAtRest(t *testing.T, cores []*member, markers []string) {
	t.Helper()
	for _, m := range cores {
		for _, f := range testcluster.FilesHolding(t, m.data, markers...) {
			t.Errorf("core %s: %s in plain text", m.host, f)
		}
	}
}

// currentKeys maps the id of the key each core seals under (the first of
// its key file) to the cores that do.
func currentKeys(t *testing.T, cores []*member) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, m := range cores {
		f, err := os.Open(filepath.Join(m.data, "secrets.key"))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		id := ""
		for id == "" && sc.Scan() {
			if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
				id, _, _ = strings.Cut(line, " ")
			}
		}
		f.Close()
		out[id] = append(out[id], m.host)
	}
	return out
}

// hook is a webhook receiver keeping what each delivery carried.
type hook struct {
	mu  sync.Mutex
	got []hookDelivery
}

type hookDelivery struct {
	body   []byte
	sig    string // X-Edgefaas-Signature
	header string // X-Token
	query  string // the URL's token parameter
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, hookDelivery{body: b, sig: r.Header.Get("X-Edgefaas-Signature"),
		header: r.Header.Get("X-Token"), query: r.URL.Query().Get("token")})
}

func (h *hook) serve(t *testing.T, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// delivered waits for the delivery whose body holds tag.
func (h *hook) delivered(t *testing.T, tag string) hookDelivery {
	t.Helper()
	var d hookDelivery
	wait.ForState(t, 60*time.Second, "the delivery of "+tag, func() (bool, string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, g := range h.got {
			if bytes.Contains(g.body, []byte(tag)) {
				d = g
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d deliveries", len(h.got))
	})
	return d
}
