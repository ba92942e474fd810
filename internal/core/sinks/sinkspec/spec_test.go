package sinkspec

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseAccepts(t *testing.T) {
	got, err := Parse([]byte(`[
		{"type":"couchdb","params":{"url":"http://db.example:5984/results","username":"u","password":"p"}},
		{"type":"webhook","params":{"url":"https://hook.example/in?token=abc","headers":{"X-Key":"k"},"secret":"s"}},
		{"type":"mqtt","params":{"host":"broker.example","port":"1884","topic":"out/x"}},
		{"type":"mqtt","params":{"host":"broker.example","port":8883,"topic":"t","tls":true,"retain":true}},
		{"type":"mqtt","params":{"host":"10.0.0.1","topic":"t"}}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got[0].Params.Password != "p" || got[2].Params.Port != 1884 || got[3].Params.Port != 8883 || got[4].Params.Port != 1883 {
		t.Fatalf("parsed %+v", got)
	}
	for _, empty := range []string{"", " ", "null", "[]", "{}"} {
		if l, err := Parse([]byte(empty)); err != nil || len(l) != 0 {
			t.Errorf("Parse(%q) = %v, %v", empty, l, err)
		}
	}
}

func TestParseRefusesNamingTheField(t *testing.T) {
	cases := map[string]string{
		`{"type":"couchdb"}`:                                                           "sinks:",
		`[{"type":"redis","params":{}}]`:                                               "sinks[0].type",
		`[{"params":{"url":"http://h/db"}}]`:                                           "sinks[0].type",
		`[{"type":"couchdb"}]`:                                                         "sinks[0].params",
		`[{"type":"couchdb","params":{"url":"http://h/db","extra":1}}]`:                "sinks[0].params",
		`[{"type":"couchdb","params":{"url":"ftp://h/db"}}]`:                           "sinks[0].params.url",
		`[{"type":"couchdb","params":{"url":"http://h:5984"}}]`:                        "sinks[0].params.url",
		`[{"type":"couchdb","params":{"url":"http://u:p@h/db"}}]`:                      "sinks[0].params.url",
		`[{"type":"couchdb","params":{"url":"http://h/db","password":"p"}}]`:           "sinks[0].params.username",
		`[{"type":"couchdb","params":{"url":"http://h/db","username":5}}]`:             "sinks[0].params",
		`[{"type":"webhook","params":{"url":"http://h/","headers":{"Host":"x"}}}]`:     "sinks[0].params.headers.Host",
		`[{"type":"webhook","params":{"url":"http://h/","headers":{"a b":"x"}}}]`:      "sinks[0].params.headers",
		`[{"type":"webhook","params":{"url":"http://h/","headers":{"X":"a\nb"}}}]`:     "sinks[0].params.headers.X",
		`[{"type":"webhook","params":{"url":"http://h/","username":"u"}}]`:             "sinks[0].params.username",
		`[{"type":"mqtt","params":{"topic":"t"}}]`:                                     "sinks[0].params.host",
		`[{"type":"mqtt","params":{"host":"b","port":"x","topic":"t"}}]`:               "sinks[0].params.port",
		`[{"type":"mqtt","params":{"host":"b","port":70000,"topic":"t"}}]`:             "sinks[0].params.port",
		`[{"type":"mqtt","params":{"host":"b","port":true,"topic":"t"}}]`:              "sinks[0].params.port",
		`[{"type":"mqtt","params":{"host":"b"}}]`:                                      "sinks[0].params.topic",
		`[{"type":"mqtt","params":{"host":"b","topic":"a/#"}}]`:                        "sinks[0].params.topic",
		`[{"type":"mqtt","params":{"host":"b","topic":"$SYS/x"}}]`:                     "sinks[0].params.topic",
		`[{"type":"mqtt","params":{"host":"b c","topic":"t"}}]`:                        "sinks[0].params.host",
		`[{"type":"mqtt","params":{"host":"b","topic":"t"}},{"type":"x","params":{}}]`: "sinks[1].type",
	}
	for in, field := range cases {
		_, err := Parse([]byte(in))
		var fe *FieldError
		if !errors.As(err, &fe) || !strings.HasPrefix(err.Error(), field) {
			t.Errorf("Parse(%s) = %v; want an error naming %s", in, err, field)
		}
	}
	many := "[" + strings.Repeat(`{"type":"mqtt","params":{"host":"b","topic":"t"}},`, MaxSinks) + `{"type":"mqtt","params":{"host":"b","topic":"t"}}]`
	if _, err := Parse([]byte(many)); err == nil {
		t.Error("more than MaxSinks accepted")
	}
}

func TestRedactAndTarget(t *testing.T) {
	in, err := Parse([]byte(`[{"type":"couchdb","params":{"url":"http://db:5984/r","username":"u","password":"pw"}},
		{"type":"webhook","params":{"url":"https://h/in?token=abc","headers":{"Authorization":"Bearer t"},"secret":"s"}},
		{"type":"mqtt","params":{"host":"b","topic":"out","username":"u","password":"pw","tls":true}}]`))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := json.Marshal(Redact(in))
	for _, secret := range []string{"pw", "abc", "Bearer t", `"s"`} {
		if strings.Contains(string(out), secret) {
			t.Errorf("redacted view %s still holds %q", out, secret)
		}
	}
	if in[0].Params.Password != "pw" {
		t.Error("Redact changed its input")
	}
	want := []string{"http://db:5984/r", "https://h/in", "mqtts://b:8883/out"}
	for i, s := range in {
		if got := Target(s); got != want[i] {
			t.Errorf("Target = %q, want %q", got, want[i])
		}
	}
}
