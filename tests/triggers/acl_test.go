package triggers_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// subject creates a subject and returns its token.
func subject(t *testing.T, core *testcluster.Core, name string) string {
	t.Helper()
	code, b := callAs(t, core, core.Admin, http.MethodPost, "/v1/admin/subjects", strings.NewReader(`{"subject":{"name":"`+name+`"}}`), "application/json")
	var sub struct{ Data struct{ Token string } }
	if json.Unmarshal(b, &sub); code != 201 || sub.Data.Token == "" {
		t.Fatalf("create subject %s: %d %s", name, code, b)
	}
	return sub.Data.Token
}

// mqttUser is a client of the embedded broker with a users-file login,
// keeping the topics of what it receives, in order.
type mqttUser struct {
	c   mqtt.Client
	mu  sync.Mutex
	got []string
}

func connectAs(t *testing.T, port int, user, pass string) *mqttUser {
	t.Helper()
	u := &mqttUser{}
	opts := mqtt.NewClientOptions().AddBroker("tcp://127.0.0.1:" + strconv.Itoa(port)).
		SetClientID(fmt.Sprintf("%s%d", user, time.Now().UnixNano()%1e9)).SetCleanSession(true).
		SetUsername(user).SetPassword(pass).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) {
			u.mu.Lock()
			u.got = append(u.got, m.Topic())
			u.mu.Unlock()
		})
	u.c = mqtt.NewClient(opts)
	if tok := u.c.Connect(); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("%s connect: %v", user, tok.Error())
	}
	t.Cleanup(func() { u.c.Disconnect(100) })
	return u
}

// subscribe returns the QoS the broker granted for filter (0x80: refused).
func (u *mqttUser) subscribe(t *testing.T, filter string) byte {
	t.Helper()
	tok := u.c.Subscribe(filter, 1, nil)
	if !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return tok.(*mqtt.SubscribeToken).Result()[filter]
}

func (u *mqttUser) topics() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.got...)
}

// TestEmbeddedBrokerTopicACL: on the embedded broker every subject has
// the topics under its name. Bob's trigger on "#" is refused at upload;
// bob's own client may not subscribe to "#" either (the broker refuses
// it) and receives alice's message on none of its subscriptions, only his
// own; his trigger on "bob/#" runs for his messages and never for
// alice's; a subject's egress bound applies to the embedded broker as to
// any other.
func TestEmbeddedBrokerTopicACL(t *testing.T) {
	port := testcluster.PortNum(t, "127.0.0.1")
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte("alice:alice-pw\nbob:bob-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	core := testcluster.StartCore(t, append([]string{"--mqtt-broker", "127.0.0.1:" + strconv.Itoa(port), "--mqtt-broker-users", users}, coreFlags...)...)
	alice, bob, carol := subject(t, core, "alice"), subject(t, core, "bob"), subject(t, core, "carol")

	for _, topic := range []string{"#", "+/secret", "alice/#", "$SYS/#"} {
		code, body := uploadAs(t, core, bob, http.MethodPost, "bobsall", "test/echo", mqttEvents(port, topic))
		if code != 400 || !strings.Contains(body, "events[0].params.topic") || !strings.Contains(body, "bob/") {
			t.Errorf("bob's trigger on %q: %d %s", topic, code, body)
		}
	}
	if code, body := uploadAs(t, core, bob, http.MethodPost, "bobs", "test/echo", mqttEvents(port, "bob/#")); code != 201 {
		t.Fatalf("bob's trigger: %d %s", code, body)
	}
	if code, body := uploadAs(t, core, alice, http.MethodPost, "alices", "test/echo", mqttEvents(port, "alice/#")); code != 201 {
		t.Fatalf("alice's trigger: %d %s", code, body)
	}
	// Carol may reach only example.com: the embedded broker is outside.
	if code, b := callAs(t, core, core.Admin, http.MethodPut, "/v1/admin/subjects/carol/egress", strings.NewReader(`{"hosts":["example.com"]}`), "application/json"); code != 200 {
		t.Fatalf("carol's bound: %d %s", code, b)
	}
	if code, body := uploadAs(t, core, carol, http.MethodPost, "carols", "test/echo", mqttEvents(port, "carol/#")); code != 201 {
		t.Fatalf("carol's trigger: %d %s", code, body)
	}
	core.WaitLog(regexp.MustCompile(`MQTT trigger subscribed.*function=bobs( |$)`), 60*time.Second)
	core.WaitLog(regexp.MustCompile(`MQTT trigger subscribed.*function=alices( |$)`), 60*time.Second)
	core.WaitLog(regexp.MustCompile(`MQTT connect failed.*function=carols .*outside the operator's bound`), 60*time.Second)

	bobc := connectAs(t, port, "bob", "bob-pw")
	if q := bobc.subscribe(t, "#"); q < 0x80 {
		t.Errorf("bob's client subscribed to # (granted QoS %d)", q)
	}
	if q := bobc.subscribe(t, "+/secret"); q < 0x80 {
		t.Errorf("bob's client subscribed to +/secret (granted QoS %d)", q)
	}
	if q := bobc.subscribe(t, "bob/#"); q != 1 {
		t.Fatalf("bob's client on bob/#: granted %d", q)
	}
	alicec := connectAs(t, port, "alice", "alice-pw")
	pub := &publisher{c: alicec.c}
	pub.publish(t, "alice/secret", []byte(`{"pin":1234}`))
	// Bob publishes to alice's topic (QoS 0: refused publishes are
	// dropped; at QoS 1 the broker would disconnect him), then to his
	// own; the broker handles one client's packets in order, so once
	// bob/in is acknowledged the first was handled. Then alice publishes
	// again: her trigger's session gets her messages in order, and bob's
	// would be between them.
	if tok := bobc.c.Publish("alice/secret", 0, false, []byte(`{"pin":5678}`)); !tok.WaitTimeout(20*time.Second) || tok.Error() != nil {
		t.Fatalf("bob's publish: %v", tok.Error())
	}
	(&publisher{c: bobc.c}).publish(t, "bob/in", []byte(`{"n":1}`))
	pub.publish(t, "alice/done", []byte(`{"end":1}`))

	wait.ForState(t, 60*time.Second, "bob's client receives his own message", func() (bool, string) {
		got := bobc.topics()
		return len(got) > 0, fmt.Sprint(got)
	})
	if got := bobc.topics(); got[0] != "bob/in" {
		t.Errorf("bob's client received %v; the first should be his own bob/in", got)
	}
	byBob := func() []record {
		_, b := callAs(t, core, bob, http.MethodGet, "/v1/activations?module=_&function=bobs&limit=1000", nil, "")
		var page struct{ Data []record }
		json.Unmarshal(b, &page)
		return page.Data
	}
	var rs []record
	wait.ForState(t, 60*time.Second, "bob's trigger runs for bob/in", func() (bool, string) {
		rs = byBob()
		return len(rs) > 0 && rs[0].Status == "success", fmt.Sprintf("%+v", rs)
	})
	var ars []record
	wait.ForState(t, 60*time.Second, "alice's trigger runs for alice/done", func() (bool, string) {
		_, b := callAs(t, core, alice, http.MethodGet, "/v1/activations?module=_&function=alices&limit=1000", nil, "")
		var page struct{ Data []record }
		json.Unmarshal(b, &page)
		ars = page.Data
		for _, r := range ars {
			if strings.Contains(string(r.Result), "end") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", ars)
	})
	for _, r := range ars {
		if strings.Contains(string(r.Result), "5678") {
			t.Errorf("bob published into alice's topic: %+v", r)
		}
	}
	if len(ars) != 2 {
		t.Errorf("alice's trigger ran %d times, want 2 (her pin, her end): %+v", len(ars), ars)
	}
	for _, r := range byBob() {
		if r.Trigger == nil || r.Trigger.Topic != "bob/in" || strings.Contains(string(r.Result), "pin") {
			t.Errorf("bob's trigger ran for %+v", r)
		}
	}
	if got := bobc.topics(); strings.Contains(strings.Join(got, ","), "alice") {
		t.Errorf("bob's client received alice's topics: %v", got)
	}
}
