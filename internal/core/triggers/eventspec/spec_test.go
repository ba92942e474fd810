package eventspec

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

func TestParseAccepts(t *testing.T) {
	evs, err := Parse([]byte(`[
		{"type":"mqtt","params":{"host":"broker.local","port":"1883","topic":"sensors/+/temp"}},
		{"type":"mqtt","params":{"host":"10.0.0.2","port":8883,"topic":"#","username":"u","password":"p"}},
		{"type":"cron","schedule":"*/5 * * * *","args":{"k": 1}},
		{"type":"cron","schedule":"@every 1s"},
		{"type":"cron","schedule":"*/2 * * * * *"}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 5 || evs[0].Params.Port != 1883 || evs[1].Params.Port != 8883 || evs[0].Params.Topic != "sensors/+/temp" {
		t.Fatalf("%+v", evs)
	}
	if string(evs[2].Args) != `{"k":1}` || string(evs[3].Args) != `{}` {
		t.Fatalf("args %s %s", evs[2].Args, evs[3].Args)
	}
	for _, empty := range []string{"", "null", "[]", " [ ] "} {
		evs, err := Parse([]byte(empty))
		if err != nil || len(evs) != 0 {
			t.Fatalf("%q: %v %v", empty, evs, err)
		}
	}
}

func TestParseRefusesNamingTheField(t *testing.T) {
	cases := map[string]string{
		`{}`:                                    "events",
		`[1]`:                                   "events[0]",
		`[{"type":"kafka"}]`:                    "events[0].type",
		`[{"params":{}}]`:                       "events[0].type",
		`[{"type":"mqtt"}]`:                     "events[0].params",
		`[{"type":"mqtt","params":{"port":1}}]`: "events[0].params.host",
		`[{"type":"mqtt","params":{"host":"h","topic":"t","port":"70000"}}]`:   "events[0].params.port",
		`[{"type":"mqtt","params":{"host":"h","topic":"t","port":"x"}}]`:       "events[0].params.port",
		`[{"type":"mqtt","params":{"host":"h","topic":"t","port":true}}]`:      "events[0].params.port",
		`[{"type":"mqtt","params":{"host":"h","port":1}}]`:                     "events[0].params.topic",
		`[{"type":"mqtt","params":{"host":"h","port":1,"topic":"a/#/b"}}]`:     "events[0].params.topic",
		`[{"type":"mqtt","params":{"host":"h","port":1,"topic":"a+"}}]`:        "events[0].params.topic",
		`[{"type":"mqtt","params":{"host":"h/x","port":1,"topic":"t"}}]`:       "events[0].params.host",
		`[{"type":"mqtt","params":{"host":"h","port":1,"topic":"t","qos":2}}]`: "events[0].params",
		`[{"type":"mqtt","params":{"host":"h","topic":"t","password":"p"}}]`:   "events[0].params.password",
		`[{"type":"cron","schedule":"every day"}]`:                             "events[0].schedule",
		`[{"type":"cron"}]`: "events[0].schedule",
		`[{"type":"cron","schedule":"* * * * *","args":[1]}]`:                              "events[0].args",
		`[{"type":"cron","schedule":"* * * * *","extra":1}]`:                               "events[0]",
		`[{"type":"cron","schedule":"* * * * *"},{"type":"cron","schedule":"61 * * * *"}]`: "events[1].schedule",
	}
	for in, field := range cases {
		_, err := Parse([]byte(in))
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != field {
			t.Errorf("%s: got %v, want an error naming %s", in, err, field)
		}
	}
	many := "[" + strings.Repeat(`{"type":"cron","schedule":"@hourly"},`, MaxEvents) + `{"type":"cron","schedule":"@hourly"}]`
	if _, err := Parse([]byte(many)); err == nil {
		t.Error("more than MaxEvents accepted")
	}
}

func TestKeyStableAndDistinct(t *testing.T) {
	evs, _ := Parse([]byte(`[{"type":"cron","schedule":"@hourly"},{"type":"cron","schedule":"@hourly"},{"type":"mqtt","params":{"host":"h","topic":"t"}}]`))
	k0, k1, k2 := Key("m", "f", evs, 0), Key("m", "f", evs, 1), Key("m", "f", evs, 2)
	if k0 == k1 || k1 == k2 || k0 == k2 {
		t.Fatal("keys collide")
	}
	// Reordered: the mqtt trigger keeps its key.
	re := []storage.Event{evs[2], evs[0], evs[1]}
	if Key("m", "f", re, 0) != k2 || Key("m", "f", re, 1) != k0 {
		t.Fatal("keys changed with order")
	}
	if Key("m", "g", evs, 0) == k0 {
		t.Fatal("another function shares a key")
	}
}

func TestRedact(t *testing.T) {
	evs, _ := Parse([]byte(`[{"type":"mqtt","params":{"host":"h","topic":"t","username":"u","password":"secret"}}]`))
	r := Redact(evs)
	if r[0].Params.Password == "secret" || evs[0].Params.Password != "secret" {
		t.Fatal("redaction wrong or mutated the input")
	}
}

func TestMinPeriod(t *testing.T) {
	for expr, want := range map[string]time.Duration{
		"@every 1s":             time.Second,
		"@every 90s":            90 * time.Second,
		"* * * * *":             time.Minute,
		"*/5 * * * * *":         5 * time.Second,
		"0,1 0 * * * *":         time.Second,
		"@hourly":               time.Hour,
		"0 9 * * 1-5":           24 * time.Hour,
		"CRON_TZ=UTC 0 0 * * *": 24 * time.Hour,
	} {
		got, err := MinPeriod(expr)
		if err != nil || got != want {
			t.Errorf("MinPeriod(%q) = %v, %v; want %v", expr, got, err, want)
		}
	}
	if _, err := MinPeriod("sometimes"); err == nil {
		t.Error("MinPeriod accepted a bad expression")
	}
}
