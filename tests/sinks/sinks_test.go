// Package sinks_test runs the real edgefaas binary (a single-box core with
// its worker) and checks that results of successful activations land in
// their functions' sinks: a CouchDB-compatible server (pouchdb-server,
// with authentication enforced), Debian's mosquitto, and a webhook on
// loopback that is down, then up again across a kill -9 of the core; and
// that the egress policy's refusals show in the activation record.
package sinks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// delivery and record are the parts of an activation record read here.
type delivery struct {
	Type, Target, Status string
	Attempts             int
	LastError            string `json:"last_error"`
}

type record struct {
	ID     string
	Status string
	Result json.RawMessage
	Sinks  []delivery
}

// startCore starts a single-box core whose sinks may reach 127.0.0.1 (by
// name and by address), whose retries are quick, and waits for its worker.
func startCore(t *testing.T) *testcluster.Core {
	t.Helper()
	core := testcluster.StartCore(t, "--with-worker",
		"--egress-allow", "127.0.0.1,127.0.0.3", "--allow-net", "127.0.0.1/32",
		"--sink-retry-first", "200ms", "--sink-retry-max", "1s")
	core.WaitWorkers(t, func(ns []client.Node) bool { return len(ns) > 0 })
	return core
}

func do(t *testing.T, core *testcluster.Core, method, path, contentType string, body io.Reader) (int, []byte, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, core.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+core.Guest)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// upload creates (or, with update, replaces) function name in module _
// from the echo test module, with the given sinks field (nil: absent).
func upload(t *testing.T, core *testcluster.Core, name string, update bool, sinks *string) (int, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	method, path := http.MethodPost, "/v1/fn/_"
	if update {
		method, path = http.MethodPut, "/v1/fn/_/"+name
	} else {
		mw.WriteField("name", name)
		fw, _ := mw.CreateFormFile("code", "echo.wasm")
		fw.Write(testmodules.Read(t, "test/echo"))
	}
	if sinks != nil {
		mw.WriteField("sinks", *sinks)
	}
	mw.Close()
	status, b, _ := do(t, core, method, path, mw.FormDataContentType(), &buf)
	return status, string(b)
}

func ptr(s string) *string { return &s }

// invoke calls name synchronously (or async) and returns the activation id.
func invoke(t *testing.T, core *testcluster.Core, name, args string, async bool) string {
	t.Helper()
	path := "/v1/fn/_/" + name
	if async {
		path += "?async=true"
	}
	status, b, h := do(t, core, http.MethodPost, path, "application/json", strings.NewReader(`{"args":`+args+`}`))
	want := http.StatusOK
	if async {
		want = http.StatusAccepted
	}
	if status != want {
		t.Fatalf("invoke %s: %d %s", name, status, b)
	}
	return h.Get("X-Edgefaas-Activation")
}

func getRecord(t *testing.T, core *testcluster.Core, id string) (record, bool) {
	status, b, _ := do(t, core, http.MethodGet, "/v1/activations/"+id, "", nil)
	if status != http.StatusOK {
		return record{}, false
	}
	var r struct{ Data record }
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("record %s: %v", b, err)
	}
	return r.Data, true
}

// waitRecord polls a record until cond holds (bounded).
func waitRecord(t *testing.T, core *testcluster.Core, id string, what string, cond func(record) bool) record {
	t.Helper()
	var r record
	wait.ForState(t, 90*time.Second, "activation "+id+" "+what, func() (bool, string) {
		var ok bool
		r, ok = getRecord(t, core, id)
		return ok && cond(r), fmt.Sprintf("%+v", r)
	})
	return r
}

func TestSinkFieldOnCreateUpdateDelete(t *testing.T) {
	core := startCore(t)
	status, body := upload(t, core, "bad", false, ptr(`[{"type":"couchdb","params":{"url":"ftp://x/db"}}]`))
	if status != http.StatusBadRequest || !strings.Contains(body, "sinks[0].params.url") {
		t.Fatalf("bad url: %d %s", status, body)
	}
	status, body = upload(t, core, "bad", false, ptr(`[{"type":"mqtt","params":{"host":"b","port":"1883","topic":"t","qos":2}}]`))
	if status != http.StatusBadRequest || !strings.Contains(body, "sinks[0].params") || !strings.Contains(body, "qos") {
		t.Fatalf("unknown param: %d %s", status, body)
	}
	status, body = upload(t, core, "f", false, ptr(`[{"type":"couchdb","params":{"url":"http://127.0.0.1:1/db","username":"u","password":"hunter2"}},
		{"type":"mqtt","params":{"host":"127.0.0.1","port":"1883","topic":"out","username":"u","password":"hunter3"}}]`))
	if status != http.StatusCreated || strings.Contains(body, "hunter") || !strings.Contains(body, `"REDACTED"`) {
		t.Fatalf("create: %d %s", status, body)
	}
	_, got, _ := do(t, core, http.MethodGet, "/v1/fn/_/f", "", nil)
	if strings.Contains(string(got), "hunter") || !strings.Contains(string(got), `"port":1883`) || !strings.Contains(string(got), `"sinks"`) {
		t.Fatalf("record shows %s", got)
	}
	// Update replaces; an update without the field keeps them; [] removes.
	status, body = upload(t, core, "f", true, ptr(`[{"type":"webhook","params":{"url":"http://127.0.0.1:1/hook"}}]`))
	if status != http.StatusOK || strings.Contains(body, "couchdb") || !strings.Contains(body, "webhook") {
		t.Fatalf("update: %d %s", status, body)
	}
	// An empty part (form clients' "no value") keeps them.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("metadata", `{"timeout_ms":5000}`)
	mw.WriteField("sinks", "")
	mw.Close()
	status, b, _ := do(t, core, http.MethodPut, "/v1/fn/_/f", mw.FormDataContentType(), &buf)
	if status != http.StatusOK || !strings.Contains(string(b), "webhook") {
		t.Fatalf("update with an empty sinks part: %d %s", status, b)
	}
	status, body = upload(t, core, "f", true, ptr(`[]`))
	if status != http.StatusOK || strings.Contains(body, `"sinks"`) {
		t.Fatalf("update to none: %d %s", status, body)
	}
	if status, _, _ := do(t, core, http.MethodDelete, "/v1/fn/_/f", "", nil); status != http.StatusNoContent {
		t.Fatalf("delete: %d", status)
	}
}

// pouch starts pouchdb-server with an admin on a fresh directory, creates
// database db readable and writable by that admin only, and returns its
// URL. It skips the test when pouchdb-server is not installed.
func pouch(t *testing.T, user, pass string) string {
	t.Helper()
	bin, err := exec.LookPath("pouchdb-server")
	if err != nil {
		t.Skip("pouchdb-server is not installed (scripts/install-deps.sh installs it from npm): ", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(fmt.Sprintf(`{"admins":{%q:%q}}`, user, pass)), 0o600); err != nil {
		t.Fatal(err)
	}
	port := testcluster.Port(t, "127.0.0.1")
	cmd := exec.Command(bin, "--host", "127.0.0.1", "--port", port, "--dir", dir, "--config", filepath.Join(dir, "config.json"), "--no-stdout-logs")
	cmd.Dir = dir
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := "http://127.0.0.1:" + port
	admin := func(method, path, body string) int {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.SetBasicAuth(user, pass)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if err := wait.Until(context.Background(), 30*time.Second, "pouchdb-server creates the database", func() bool {
		return admin(http.MethodPut, "/results", "") == http.StatusCreated
	}); err != nil {
		t.Fatalf("%v:\n%s", err, log.String())
	}
	if st := admin(http.MethodPut, "/results/_security", fmt.Sprintf(`{"admins":{"names":[%q],"roles":[]},"members":{"names":[%q],"roles":[]}}`, user, user)); st != http.StatusOK {
		t.Fatalf("_security: %d", st)
	}
	// The server enforces authentication: an anonymous write is refused.
	resp, err := http.Post(base+"/results", "application/json", strings.NewReader(`{"anonymous":true}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("pouchdb-server accepts anonymous writes (%d): the test could not tell that edgefaas authenticates", resp.StatusCode)
	}
	return base + "/results"
}

func TestCouchDBSink(t *testing.T) {
	db := pouch(t, "admin", "s3cret")
	core := startCore(t)
	sinks := fmt.Sprintf(`[{"type":"couchdb","params":{"url":%q,"username":"admin","password":"s3cret"}}]`, db)
	if status, body := upload(t, core, "tocouch", false, &sinks); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	wrong := fmt.Sprintf(`[{"type":"couchdb","params":{"url":%q,"username":"admin","password":"wrong"}}]`, db)
	if status, body := upload(t, core, "wrongpass", false, &wrong); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	syncID := invoke(t, core, "tocouch", `{"n":1,"via":"sync"}`, false)
	asyncID := invoke(t, core, "tocouch", `{"n":2,"via":"async"}`, true)
	refusedID := invoke(t, core, "wrongpass", `{"n":3}`, false)
	for _, id := range []string{syncID, asyncID} {
		r := waitRecord(t, core, id, "delivered", func(r record) bool { return len(r.Sinks) == 1 && r.Sinks[0].Status == "delivered" })
		if r.Sinks[0].Type != "couchdb" || r.Sinks[0].Target != db || r.Sinks[0].Attempts != 1 {
			t.Errorf("delivery %+v", r.Sinks[0])
		}
	}
	r := waitRecord(t, core, refusedID, "failed", func(r record) bool { return len(r.Sinks) == 1 && r.Sinks[0].Status == "failed" })
	if !strings.Contains(r.Sinks[0].LastError, "401") {
		t.Errorf("wrong password: %+v", r.Sinks[0])
	}
	// The documents are in the database, under the activation ids.
	for id, want := range map[string]string{syncID: "sync", asyncID: "async"} {
		req, _ := http.NewRequest(http.MethodGet, db+"/"+id, nil)
		req.SetBasicAuth("admin", "s3cret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || doc["via"] != want || doc["_id"] != id {
			t.Errorf("document %s: %d %v", id, resp.StatusCode, doc)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, db+"/_all_docs", nil)
	req.SetBasicAuth("admin", "s3cret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var all struct {
		TotalRows int `json:"total_rows"`
	}
	json.NewDecoder(resp.Body).Decode(&all)
	resp.Body.Close()
	if all.TotalRows != 2 {
		t.Errorf("database holds %d documents, want 2", all.TotalRows)
	}
	// Ownership: another subject sees neither the function (with its
	// sinks) nor the records (with their deliveries).
	other, err := core.Client(core.Admin).CreateSubject(context.Background(), "other")
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/fn/_/tocouch", "/v1/activations/" + syncID} {
		req, _ := http.NewRequest(http.MethodGet, core.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+other.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("another subject's GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
}

// mosquitto starts Debian's broker on 127.0.0.1:port; it skips the test
// when mosquitto is not installed.
func mosquitto(t *testing.T, port string) *exec.Cmd {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr != nil {
			t.Skip("mosquitto is not installed (scripts/install-deps.sh installs it): ", err)
		}
		bin = "/usr/sbin/mosquitto"
	}
	conf := filepath.Join(t.TempDir(), "mosquitto.conf")
	os.WriteFile(conf, []byte("listener "+port+" 127.0.0.1\nallow_anonymous true\npersistence false\n"), 0o600)
	broker := exec.Command(bin, "-c", conf)
	if err := broker.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Process.Kill(); broker.Wait() })
	return broker
}

// subscribe connects a test client to the broker (retrying until it is
// up) and sends what arrives on topic, QoS 1, to the channel.
func subscribe(t *testing.T, port, topic string) <-chan string {
	t.Helper()
	got := make(chan string, 100)
	opts := mqtt.NewClientOptions().AddBroker("tcp://127.0.0.1:" + port).SetClientID("sinks-test-" + port).
		SetConnectRetry(true).SetConnectRetryInterval(50 * time.Millisecond)
	sub := mqtt.NewClient(opts)
	if tok := sub.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber connect: %v", tok.Error())
	}
	t.Cleanup(func() { sub.Disconnect(100) })
	if tok := sub.Subscribe(topic, 1, func(_ mqtt.Client, m mqtt.Message) { got <- string(m.Payload()) }); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return got
}

func TestMQTTSink(t *testing.T) {
	port := testcluster.Port(t, "127.0.0.1")
	mosquitto(t, port)
	got := subscribe(t, port, "results/echo")
	core := startCore(t)
	sinks := fmt.Sprintf(`[{"type":"mqtt","params":{"host":"127.0.0.1","port":%q,"topic":"results/echo"}}]`, port)
	if status, body := upload(t, core, "tomqtt", false, &sinks); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	ids := map[string]bool{}
	for i := range 3 {
		ids[invoke(t, core, "tomqtt", fmt.Sprintf(`{"i":%d}`, i), i == 1)] = true
	}
	seen := map[string]bool{}
	timeout := time.After(90 * time.Second)
	for len(seen) < 3 {
		select {
		case p := <-got:
			seen[p] = true
		case <-timeout:
			t.Fatalf("received %v of 3 results", seen)
		}
	}
	for i := range 3 {
		if !seen[fmt.Sprintf(`{"i":%d}`, i)] {
			t.Errorf("result %d not published: %v", i, seen)
		}
	}
	for id := range ids {
		r := waitRecord(t, core, id, "delivered", func(r record) bool { return len(r.Sinks) == 1 && r.Sinks[0].Status == "delivered" })
		if r.Sinks[0].Target != "mqtt://127.0.0.1:"+port+"/results/echo" {
			t.Errorf("target %q", r.Sinks[0].Target)
		}
	}
}

// hook is a webhook receiver on a fixed loopback address, started late.
type hook struct {
	mu     sync.Mutex
	bodies map[string]string // activation id → body
	srv    *http.Server
}

func (h *hook) start(t *testing.T, addr string) {
	t.Helper()
	var ln net.Listener
	var err error
	if werr := wait.Until(context.Background(), 2*time.Second, "a listener on "+addr+", free a moment ago", func() bool {
		ln, err = net.Listen("tcp", addr)
		return err == nil
	}); werr != nil {
		t.Fatal(werr, err)
	}
	h.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.bodies[r.Header.Get("X-Edgefaas-Activation")] = string(b)
		h.mu.Unlock()
	})}
	go h.srv.Serve(ln)
	t.Cleanup(func() { h.srv.Close() })
}

func TestWebhookRetriedAcrossCoreRestartAndEgressRefusals(t *testing.T) {
	core := startCore(t)
	addr := "127.0.0.1:" + testcluster.Port(t, "127.0.0.1")
	sinks := fmt.Sprintf(`[{"type":"webhook","params":{"url":"http://%s/in"}},
		{"type":"webhook","params":{"url":"http://127.0.0.2:%s/in"}},
		{"type":"webhook","params":{"url":"http://127.0.0.3:%s/in"}}]`, addr, testcluster.Port(t, "127.0.0.1"), testcluster.Port(t, "127.0.0.1"))
	if status, body := upload(t, core, "tohook", false, &sinks); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	id := invoke(t, core, "tohook", `{"k":"v"}`, true)
	// The receiver is down: the delivery is retried, and the record says so.
	r := waitRecord(t, core, id, "retried twice", func(r record) bool {
		return len(r.Sinks) == 3 && r.Sinks[0].Attempts >= 2 && r.Sinks[1].Status == "failed" && r.Sinks[2].Status == "failed"
	})
	if r.Status != "success" || r.Sinks[0].Status != "pending" || r.Sinks[0].LastError == "" {
		t.Errorf("while down: %+v", r)
	}
	// 127.0.0.2 is not a host sinks may reach; 127.0.0.3 is, but its
	// address is internal and not opened by --allow-net: both refused at
	// once by the egress policy.
	for i, want := range map[int]string{1: "host not allowed", 2: "address not allowed"} {
		if d := r.Sinks[i]; d.Attempts != 1 || !strings.Contains(d.LastError, want) || !strings.Contains(d.LastError, "egress") {
			t.Errorf("sink %d: %+v, want %q", i, d, want)
		}
	}
	before := r.Sinks[0].Attempts
	// kill -9 the core with the delivery pending; after the restart the
	// outbox brings it back, and the receiver is up.
	core.Kill()
	core.Restart()
	h := &hook{bodies: map[string]string{}}
	h.start(t, addr)
	r = waitRecord(t, core, id, "delivered", func(r record) bool { return len(r.Sinks) == 3 && r.Sinks[0].Status == "delivered" })
	if r.Sinks[0].Attempts <= before || r.Sinks[0].LastError != "" {
		t.Errorf("after restart: %+v (attempts before %d)", r.Sinks[0], before)
	}
	h.mu.Lock()
	body := h.bodies[id]
	h.mu.Unlock()
	if body != `{"k":"v"}` {
		t.Errorf("webhook got %q for %s (all: %v)", body, id, h.bodies)
	}
}

// TestSyncAnswerDoesNotWaitForSinks: a webhook that takes seconds to
// answer does not slow synchronous calls: their median latency stays
// within a generous ratio of the same function's without sinks, measured
// in the same run (a call that waited for the sink would be ~1000× slower).
func TestSyncAnswerDoesNotWaitForSinks(t *testing.T) {
	release := make(chan struct{})
	var served sync.WaitGroup
	slow := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		served.Add(1)
		defer served.Done()
		select {
		case <-time.After(2 * time.Second):
		case <-release:
		}
	})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go slow.Serve(ln)
	t.Cleanup(func() { close(release); slow.Close() })
	core := startCore(t)
	sinks := fmt.Sprintf(`[{"type":"webhook","params":{"url":"http://%s/slow"}}]`, ln.Addr())
	if status, body := upload(t, core, "withsink", false, &sinks); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	if status, body := upload(t, core, "nosink", false, nil); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	// Interleaved, so that the machine's noise falls on both alike.
	call := func(name string, i int) time.Duration {
		start := time.Now()
		invoke(t, core, name, fmt.Sprintf(`{"i":%d}`, i), false)
		return time.Since(start)
	}
	call("nosink", -1)
	call("withsink", -1)
	var ws, wo []time.Duration
	for i := range 60 {
		wo = append(wo, call("nosink", i))
		ws = append(ws, call("withsink", i))
	}
	slices.Sort(ws)
	slices.Sort(wo)
	without, with := wo[len(wo)/2], ws[len(ws)/2]
	t.Logf("median synchronous call: %v without sinks, %v with a webhook that answers in 2 s (%.2f×)", without, with, float64(with)/float64(without))
	if with > 20*without {
		t.Errorf("calls with a slow sink took %v (median), without %v: the answer waits for the sink", with, without)
	}
}

// TestMQTTBrokerDownThenUp: the broker is down when the result is ready;
// the delivery is retried (visible in the record) and lands once it is up
// (retained, so the subscriber that connects with the broker gets it).
func TestMQTTBrokerDownThenUp(t *testing.T) {
	if _, err := exec.LookPath("mosquitto"); err != nil {
		if _, serr := os.Stat("/usr/sbin/mosquitto"); serr != nil {
			t.Skip("mosquitto is not installed (scripts/install-deps.sh installs it): ", err)
		}
	}
	port := testcluster.Port(t, "127.0.0.1")
	core := startCore(t)
	sinks := fmt.Sprintf(`[{"type":"mqtt","params":{"host":"127.0.0.1","port":%s,"topic":"late","retain":true}}]`, port)
	if status, body := upload(t, core, "late", false, &sinks); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	id := invoke(t, core, "late", `{"late":true}`, false)
	r := waitRecord(t, core, id, "retried", func(r record) bool { return len(r.Sinks) == 1 && r.Sinks[0].Attempts >= 2 })
	if r.Sinks[0].Status != "pending" || !strings.Contains(r.Sinks[0].LastError, "connect") {
		t.Errorf("while the broker is down: %+v", r.Sinks[0])
	}
	mosquitto(t, port)
	got := subscribe(t, port, "late")
	select {
	case p := <-got:
		if p != `{"late":true}` {
			t.Errorf("payload %q", p)
		}
	case <-time.After(90 * time.Second):
		t.Fatal("the result never reached the broker")
	}
	r = waitRecord(t, core, id, "delivered", func(r record) bool { return r.Sinks[0].Status == "delivered" })
	if r.Sinks[0].Attempts < 3 {
		t.Errorf("delivered after %d attempts", r.Sinks[0].Attempts)
	}
}

// TestSinkWithinOwnersEgressBound: a sink is a destination its function's
// owner grants, so an admin's egress bound on that owner applies to it as
// to the function's own requests: outside the bound the delivery fails at
// once (and the receiver sees nothing); once the bound is cleared the
// next result is delivered.
func TestSinkWithinOwnersEgressBound(t *testing.T) {
	core := startCore(t)
	addr := "127.0.0.1:" + testcluster.Port(t, "127.0.0.1")
	h := &hook{bodies: map[string]string{}}
	h.start(t, addr)
	bound := func(method, body string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, method, core.URL+"/v1/admin/subjects/guest/egress", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+core.Admin)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s the guest's egress bound: %d", method, resp.StatusCode)
		}
	}
	bound(http.MethodPut, `{"hosts":["127.0.0.3:80"]}`)
	sinks := fmt.Sprintf(`[{"type":"webhook","params":{"url":"http://%s/in"}}]`, addr)
	if status, body := upload(t, core, "bounded", false, &sinks); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, body)
	}
	refused := invoke(t, core, "bounded", `{"n":1}`, true)
	r := waitRecord(t, core, refused, "failed", func(r record) bool { return len(r.Sinks) == 1 && r.Sinks[0].Status == "failed" })
	if d := r.Sinks[0]; d.Attempts != 1 || !strings.Contains(d.LastError, "egress bound of guest") {
		t.Errorf("outside the owner's bound: %+v", d)
	}
	bound(http.MethodDelete, "")
	allowed := invoke(t, core, "bounded", `{"n":2}`, true)
	waitRecord(t, core, allowed, "delivered", func(r record) bool { return len(r.Sinks) == 1 && r.Sinks[0].Status == "delivered" })
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.bodies[refused]; ok || h.bodies[allowed] != `{"n":2}` {
		t.Errorf("webhook received %v; want only %s", h.bodies, allowed)
	}
}
