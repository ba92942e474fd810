package sinks_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
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
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestSecretsSealedAtRest: a function's sink password, webhook secret,
// header value, URL query and MQTT trigger password, and the outbox copy
// of a pending delivery, are nowhere in the core's data directory in
// plain text (pebble's WAL and tables read as bytes); the key file is
// 0600; after a restart the function is still shown, redacted.
func TestSecretsSealedAtRest(t *testing.T) {
	core := startCore(t)
	markers := []string{"pw-6c1f0a", "whs-93b2e4", "hdr-51d7c8", "qry-0e44a9", "evt-7a2d13"}
	sinks := `[{"type":"couchdb","params":{"url":"http://127.0.0.1:1/db","username":"u","password":"pw-6c1f0a"}},
		{"type":"webhook","params":{"url":"http://127.0.0.1:1/hook?token=qry-0e44a9","secret":"whs-93b2e4","headers":{"X-Token":"hdr-51d7c8"}}}]`
	if status, body := upload(t, core, "sealed", false, &sinks); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("events", `[{"type":"mqtt","params":{"host":"127.0.0.1","port":"1","topic":"in","username":"u","password":"evt-7a2d13"}}]`)
	mw.Close()
	status, b, _ := do(t, core, http.MethodPut, "/v1/fn/_/sealed", mw.FormDataContentType(), &buf)
	if status != http.StatusOK {
		t.Fatalf("events: %d %s", status, b)
	}
	// A pending delivery puts a copy of the sinks in the outbox.
	id := invoke(t, core, "sealed", `{"k":1}`, true)
	waitRecord(t, core, id, "tried", func(r record) bool { return len(r.Sinks) == 2 && r.Sinks[1].Attempts >= 1 })
	core.Stop()
	dir := filepath.Join(core.Dir, "core")
	if found := testcluster.FilesHolding(t, dir, markers...); len(found) > 0 {
		t.Errorf("secrets in plain text in the data directory:\n%s", strings.Join(found, "\n"))
	}
	st, err := os.Stat(filepath.Join(dir, "secrets.key"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", st, err)
	}
	core.Restart()
	_, got, _ := do(t, core, http.MethodGet, "/v1/fn/_/sealed", "", nil)
	for _, m := range markers {
		if strings.Contains(string(got), m) {
			t.Errorf("the API shows %q: %s", m, got)
		}
	}
	if !strings.Contains(string(got), "REDACTED") || !strings.Contains(string(got), "127.0.0.1:1/hook") {
		t.Errorf("after a restart the function reads %s", got)
	}
}

// signedHook is a webhook receiver that keeps each delivery's body and
// signature header.
type signedHook struct {
	mu   sync.Mutex
	sigs map[string]string // activation id → X-Edgefaas-Signature
	body map[string][]byte
}

func (h *signedHook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	id := r.Header.Get("X-Edgefaas-Activation")
	h.sigs[id], h.body[id] = r.Header.Get("X-Edgefaas-Signature"), b
}

// TestWebhookSignatureTimestampedAndKeyRotated: after the secrets key is
// rotated (old records re-sealed), a webhook delivery is still signed
// with the sink's secret; the signature carries a signed timestamp, so
// the receiver's verifier accepts it now and refuses the same delivery
// replayed after the tolerance, or with its timestamp changed.
func TestWebhookSignatureTimestampedAndKeyRotated(t *testing.T) {
	core := startCore(t)
	h := &signedHook{sigs: map[string]string{}, body: map[string][]byte{}}
	addr := "127.0.0.1:" + testcluster.Port(t, "127.0.0.1")
	h.serve(t, addr)
	const secret = "a-webhook-secret"
	sinks := fmt.Sprintf(`[{"type":"webhook","params":{"url":"http://%s/in","secret":%q}}]`, addr, secret)
	if status, body := upload(t, core, "signed", false, &sinks); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	keyFile := filepath.Join(core.Dir, "core", "secrets.key")
	before, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := core.Client(core.Guest).RotateSecretsKey(ctx); err == nil {
		t.Fatal("a guest rotated the secrets key")
	}
	rot, err := core.Client(core.Admin).RotateSecretsKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(keyFile)
	if err != nil || bytes.Equal(before, after) || rot.Resealed < 1 || rot.KeyID == "" || !bytes.Contains(after, []byte(rot.KeyID)) {
		t.Fatalf("rotation %+v; key file changed %v (%v)", rot, !bytes.Equal(before, after), err)
	}
	id := invoke(t, core, "signed", `{"k":"v"}`, false)
	var sig string
	var body []byte
	wait.ForState(t, 90*time.Second, "the webhook delivery", func() (bool, string) {
		h.mu.Lock()
		defer h.mu.Unlock()
		sig, body = h.sigs[id], h.body[id]
		return sig != "", fmt.Sprint(h.sigs)
	})
	now := time.Now()
	if err := client.VerifyWebhook(secret, sig, body, client.WebhookTolerance, now); err != nil {
		t.Fatalf("signature %q of %s: %v", sig, body, err)
	}
	if err := client.VerifyWebhook(secret, sig, body, client.WebhookTolerance, now.Add(client.WebhookTolerance+time.Minute)); err == nil {
		t.Errorf("signature %q accepted when replayed after the tolerance", sig)
	}
	ts, _, _ := strings.Cut(strings.TrimPrefix(sig, "t="), ",")
	moved := strings.Replace(sig, "t="+ts, fmt.Sprintf("t=%d", now.Unix()+1), 1)
	if err := client.VerifyWebhook(secret, moved, body, client.WebhookTolerance, now); err == nil || moved == sig {
		t.Errorf("signature with a changed timestamp %q accepted", moved)
	}
	if err := client.VerifyWebhook("another-secret", sig, body, client.WebhookTolerance, now); err == nil {
		t.Errorf("signature accepted under another secret")
	}
}

func (h *signedHook) serve(t *testing.T, addr string) {
	t.Helper()
	srv := &http.Server{Handler: h}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}
