package sinks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"regexp"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestMQTTMessageToCouchDB is FunLess's event pipeline end to end: a
// function with an MQTT trigger (on the core's embedded broker) and a
// CouchDB sink (pouchdb-server, authentication enforced). Each message
// published to its topic, QoS 1, runs the function as an async activation,
// and the result lands in the database as a document named by the
// activation.
func TestMQTTMessageToCouchDB(t *testing.T) {
	db := pouch(t, "admin", "s3cret")
	port := testcluster.Port(t, "127.0.0.1")
	core := testcluster.StartCore(t, "--with-worker",
		"--egress-allow", "127.0.0.1", "--allow-net", "127.0.0.1/32",
		"--sink-retry-first", "200ms", "--sink-retry-max", "1s",
		"--mqtt-broker", "127.0.0.1:"+port)
	core.WaitWorkers(t, func(ns []client.Node) bool { return len(ns) > 0 })

	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("name", "pipeline")
	fw, _ := mw.CreateFormFile("code", "echo.wasm")
	fw.Write(testmodules.Read(t, "test/echo"))
	mw.WriteField("events", fmt.Sprintf(`[{"type":"mqtt","params":{"host":"127.0.0.1","port":%q,"topic":"guest/plant/+/reading"}}]`, port))
	mw.WriteField("sinks", fmt.Sprintf(`[{"type":"couchdb","params":{"url":%q,"username":"admin","password":"s3cret"}}]`, db))
	mw.Close()
	if status, b, _ := do(t, core, http.MethodPost, "/v1/fn/_", mw.FormDataContentType(), &buf); status != http.StatusCreated {
		t.Fatalf("create: %d %s", status, b)
	}
	core.WaitLog(regexp.MustCompile(`MQTT trigger subscribed.*function=pipeline`), 30*time.Second)

	opts := mqtt.NewClientOptions().AddBroker("tcp://127.0.0.1:" + port).SetClientID("pipeline-publisher")
	pub := mqtt.NewClient(opts)
	if tok := pub.Connect(); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
		t.Fatalf("publisher connect: %v", tok.Error())
	}
	defer pub.Disconnect(100)
	const n = 5
	for i := range n {
		tok := pub.Publish(fmt.Sprintf("guest/plant/line%d/reading", i), 1, false, fmt.Sprintf(`{"n":%d,"celsius":%d}`, i, 20+i))
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %d: %v", i, tok.Error())
		}
	}

	// Every message's result is a document in the database.
	var docs map[int]string
	wait.Until(context.Background(), 90*time.Second, "every result in the database", func() bool {
		docs = couchDocs(t, db, "admin", "s3cret")
		return len(docs) == n
	})
	if len(docs) != n {
		t.Fatalf("%d of %d results in the database: %v", len(docs), n, docs)
	}
	// Each document is named by the activation that made it, a triggered
	// async activation of the function.
	for i, id := range docs {
		r, ok := getRecord(t, core, id)
		if !ok || r.Status != "success" || len(r.Sinks) != 1 || r.Sinks[0].Status != "delivered" {
			t.Errorf("message %d: document %s, record %+v", i, id, r)
		}
	}
}

// couchDocs reads every document of the database: the value of its "n"
// field → its _id.
func couchDocs(t *testing.T, db, user, pass string) map[int]string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, db+"/_all_docs?include_docs=true", nil)
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var all struct {
		Rows []struct {
			Doc struct {
				ID string `json:"_id"`
				N  *int   `json:"n"`
			} `json:"doc"`
		} `json:"rows"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&all); err != nil {
		t.Fatalf("_all_docs: %v", err)
	}
	out := map[int]string{}
	for _, r := range all.Rows {
		if r.Doc.N != nil {
			out[*r.Doc.N] = r.Doc.ID
		}
	}
	return out
}
