package triggers

import (
	"encoding/json"
	"testing"
)

func TestPayloadArgs(t *testing.T) {
	cases := map[string]string{
		`{"name":"x"}`: `{"name":"x"}`,
		`[1,2]`:        `{"payload":[1,2]}`,
		`42`:           `{"payload":42}`,
		`hello world`:  `{"payload":"hello world"}`,
		"\xff\xfe":     `{"payload_base64":"//4="}`,
	}
	for in, want := range cases {
		got := PayloadArgs([]byte(in))
		if string(got) != want || !json.Valid(got) {
			t.Errorf("%q → %s, want %s", in, got, want)
		}
	}
}
