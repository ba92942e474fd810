package triggers_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/core/triggers"
	"github.com/edgefaas/edgefaas/internal/core/triggers/broker"
	"github.com/edgefaas/edgefaas/internal/core/triggers/eventspec"
	"github.com/edgefaas/edgefaas/internal/testing/storetest"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// fired records what the manager queued, committing like the API does
// (the real store; cron ticks with their state in one batch).
type fired struct {
	mu    sync.Mutex
	store *storage.Store
	n     int
	args  []string
	infos []storage.TriggerInfo
	fail  int // refuse this many enqueues first (a full queue)
}

func (f *fired) enqueue(fn storage.Function, args json.RawMessage, info storage.TriggerInfo, key string, st *storage.CronState) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail > 0 {
		f.fail--
		return "", errors.New("queue full")
	}
	f.n++
	id := fmt.Sprintf("01AAAAAAAAAAAAAAAAAAAA%04d", f.n)
	rec := storage.Activation{ID: id, Module: fn.Module, Function: fn.Name, Subject: fn.Owner, Status: storage.StatusQueued, Async: true, Trigger: &info}
	call := storage.QueuedCall{Module: fn.Module, Function: fn.Name, Subject: fn.Owner, Args: args}
	var err error
	if st != nil {
		err = f.store.EnqueueCronTick(rec, call, key, *st)
	} else {
		err = f.store.EnqueueActivation(rec, call)
	}
	if err != nil {
		f.n--
		return "", err
	}
	f.args = append(f.args, string(args))
	f.infos = append(f.infos, info)
	return id, nil
}

func (f *fired) snapshot() ([]string, []storage.TriggerInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.args...), append([]storage.TriggerInfo(nil), f.infos...)
}

// TestManagerMQTTAndReplace: with a real broker (the embedded one, in
// process) and a real store: a message is queued with its payload as
// args, after the queue refused it twice (retried, acknowledged once
// queued); an update to another topic replaces the trigger; a delete
// stops it.
func TestManagerMQTTAndReplace(t *testing.T) {
	port := testcluster.PortNum(t, "127.0.0.1")
	b, err := broker.Start(broker.Config{Addr: "127.0.0.1:" + strconv.Itoa(port), StatePath: t.TempDir() + "/b.db"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	store := storetest.Open(t, t.TempDir(), nil)
	rec := &fired{store: store, fail: 2}
	m := triggers.New(triggers.Config{Store: store, Enqueue: rec.enqueue, RestartBackoff: 50 * time.Millisecond})
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	defer m.Stop(t.Context())

	evs := func(topic string) []storage.Event {
		e, err := eventspec.Parse([]byte(fmt.Sprintf(`[{"type":"mqtt","params":{"host":"127.0.0.1","port":%d,"topic":%q}}]`, port, topic)))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	f := storage.Function{Module: "_", Name: "f", Owner: "alice", Events: evs("a/#")}
	m.FunctionChanged(cluster.FunctionEvent{Kind: cluster.FunctionCreated, Function: f})

	pub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(fmt.Sprintf("tcp://127.0.0.1:%d", port)).SetClientID("pub"))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer pub.Disconnect(50)
	publish := func(topic, payload string) {
		if tok := pub.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	// The subscription is made asynchronously: publish until one lands.
	wait.For(t, 30*time.Second, "first message queued", func() bool {
		publish("a/b", `{"hello":"world"}`)
		args, _ := rec.snapshot()
		return len(args) > 0
	})
	args, infos := rec.snapshot()
	if args[0] != `{"hello":"world"}` || infos[0].Topic != "a/b" || infos[0].Type != "mqtt" {
		t.Fatalf("%v %+v", args, infos)
	}
	q, _ := store.QueuedActivations()
	if len(q) == 0 || q[0].Call.Subject != "alice" {
		t.Fatalf("not queued as the owner: %+v", q)
	}

	// Replace: a/# → c/d.
	f2 := f
	f2.Events = evs("c/d")
	m.FunctionChanged(cluster.FunctionEvent{Kind: cluster.FunctionUpdated, Function: f2, Previous: &f})
	if m.Count() != 1 {
		t.Fatalf("%d triggers running", m.Count())
	}
	wait.For(t, 30*time.Second, "message on the new topic", func() bool {
		publish("c/d", `"text"`)
		a, _ := rec.snapshot()
		return a[len(a)-1] == `{"payload":"text"}`
	})
	before, _ := rec.snapshot()
	publish("a/b", `{"old":true}`)
	// Delete: nothing runs any more.
	m.FunctionChanged(cluster.FunctionEvent{Kind: cluster.FunctionDeleted, Function: f2})
	if m.Count() != 0 {
		t.Fatalf("%d triggers after delete", m.Count())
	}
	publish("c/d", `{"late":true}`)
	// Proves an absence: no trigger is left to say it has seen the message.
	time.Sleep(300 * time.Millisecond)
	after, _ := rec.snapshot()
	for _, a := range after[len(before):] {
		if a == `{"old":true}` || a == `{"late":true}` {
			t.Fatalf("a replaced or deleted trigger ran: %s", a)
		}
	}
}

// TestManagerCronRestart: a cron trigger fires each second; a new
// manager on the same store (a restart) continues from the stored tick:
// no tick twice, missed ticks counted.
func TestManagerCronRestart(t *testing.T) {
	store := storetest.Open(t, t.TempDir(), nil)
	rec := &fired{store: store}
	evs, err := eventspec.Parse([]byte(`[{"type":"cron","schedule":"@every 1s","args":{"x":1}}]`))
	if err != nil {
		t.Fatal(err)
	}
	// Stored as the API would, so Start finds it.
	if _, err := store.CreateFunction(storage.Module{Name: storage.DefaultModule}, storage.NewFunction{Name: "c", Owner: "bob", Code: []byte("x"), Events: evs}); err != nil {
		t.Fatal(err)
	}
	run := func(ticks int, pause time.Duration) {
		m := triggers.New(triggers.Config{Store: store, Enqueue: rec.enqueue})
		if err := m.Start(); err != nil {
			t.Fatal(err)
		}
		start, _ := rec.snapshot()
		wait.For(t, 30*time.Second, "ticks", func() bool { a, _ := rec.snapshot(); return len(a) >= len(start)+ticks })
		m.Stop(t.Context())
		time.Sleep(pause) // the manager is down while ticks pass: the scenario, not a wait
	}
	run(2, 2500*time.Millisecond)
	run(2, 0)
	_, infos := rec.snapshot()
	seen := map[time.Time]bool{}
	missed := 0
	for _, in := range infos {
		if in.Tick == nil || seen[*in.Tick] {
			t.Fatalf("tick missing or twice: %+v", in)
		}
		seen[*in.Tick] = true
		missed += in.Missed
	}
	if missed == 0 {
		t.Fatalf("the pause of 2.5 s missed no tick: %+v", infos)
	}
	st, err := store.GetCronState(eventspec.Key("_", "c", evs, 0))
	if err != nil || st.Missed != int64(missed) {
		t.Fatalf("state %+v %v, missed %d", st, err, missed)
	}
}
