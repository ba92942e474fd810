package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
)

// invocationGarbageBound is the most reading and decoding an invocation
// body may allocate, in multiples of the body: one buffer holding the
// body is the least it can take, and any second copy of it (a growing
// read buffer, a decoder's buffer, the args copied out) would add about
// as much again, so a bound below 2 admits the body's buffer and the
// decoding's small change but no second copy.
const invocationGarbageBound = 1.5

// TestInvocationBodyAllocations: reading and decoding a 6 MiB invocation
// body, with the functions the invoke handler uses, allocates at most
// invocationGarbageBound× the body. A served call's garbage is what
// makes the collector run, and its pauses stall every other tenant's
// calls. Counted in bytes allocated (the least of three runs, so that
// another goroutine's allocation cannot settle it), not timed.
func TestInvocationBodyAllocations(t *testing.T) {
	body, err := json.Marshal(map[string]any{"args": map[string]any{"pad": strings.Repeat("x", DefaultMaxArgsBytes-64)}})
	if err != nil {
		t.Fatal(err)
	}
	var least uint64
	for i := range 3 {
		c := &call{w: httptest.NewRecorder(), r: httptest.NewRequest(http.MethodPost, "/v1/fn/_/f", bytes.NewReader(body))}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		raw, err := readBody(c, DefaultMaxArgsBytes)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		got, err := decodeInvocation(raw)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		runtime.ReadMemStats(&after)
		if want := body[len(`{"args":`) : len(body)-1]; !bytes.Equal(got.Args, want) {
			t.Fatalf("args of %d bytes, want the body's %d", len(got.Args), len(want))
		}
		if n := after.TotalAlloc - before.TotalAlloc; i == 0 || n < least {
			least = n
		}
	}
	ratio := float64(least) / float64(len(body))
	t.Logf("a %d-byte invocation body: %d bytes allocated (×%.2f)", len(body), least, ratio)
	if ratio > invocationGarbageBound {
		t.Errorf("reading and decoding a %d-byte invocation body allocated %d bytes, ×%.2f the body; want at most ×%.1f",
			len(body), least, ratio, invocationGarbageBound)
	}
}

// TestDecodeInvocationErrors: each kind of bad invocation body is
// refused with a message that says what is wrong and where.
func TestDecodeInvocationErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"args":`, "Bad Request: invocation body: the JSON is truncated"},
		{`{"args":{"a":1}`, "Bad Request: invocation body: the JSON is truncated"},
		{`{"args":{}} {"args":{}}`, "Bad Request: invocation body: unexpected data after the JSON value"},
		{`{"args":{}} x`, "Bad Request: invocation body: unexpected data after the JSON value"},
		{`{"args":{},}`, `Bad Request: invocation body: invalid JSON at byte 12: invalid character '}' looking for beginning of object key string`},
		{`not json`, `Bad Request: invocation body: invalid JSON at byte 2: invalid character 'o' in literal null (expecting 'u')`},
		{`{"arg":{}}`, `Bad Request: invocation body: unknown field "arg" (not part of this API)`},
		{`{"args":{},"zeta":1,"beta":2}`, `Bad Request: invocation body: unknown fields "beta", "zeta" (not part of this API)`},
		{`{"Args":{}}`, `Bad Request: invocation body: unknown field "Args" (not part of this API)`},
		{`[1]`, "Bad Request: invocation body: expected an object, got a JSON array"},
		{`{"callback":5}`, `Bad Request: invocation body: field "callback" must be a string, got a JSON number`},
		{`{"args":[1]}`, `Bad Request: "args" must be a JSON object, e.g. {"args":{"name":"world"}}`},
		{`{"args":"x"}`, `Bad Request: "args" must be a JSON object, e.g. {"args":{"name":"world"}}`},
		{`{"callback":"ftp://x/y"}`, `Bad Request: "callback" must be an http or https URL of at most 2048 characters`},
		{`{"scheduling":5}`, "Bad Request: scheduling: expected an object, got a JSON number"},
		{`{"scheduling":{"language":"app","script":"s","x":1}}`, `Bad Request: scheduling: unknown field "x" (not part of this API)`},
	} {
		_, err := decodeInvocation([]byte(tc.body))
		ae, ok := err.(*apiError)
		if !ok || ae.status != http.StatusBadRequest || ae.detail != tc.want {
			t.Errorf("%s: %v, want 400 %q", tc.body, err, tc.want)
		}
	}
}

// TestDecodeInvocation: a good body's fields as the call gets them; an
// empty body, a missing "args" and null args are {}; args that are a
// small part of a large body are a copy, so the call does not keep the
// body; args never share capacity with the body, so appending to them
// cannot write into it.
func TestDecodeInvocation(t *testing.T) {
	for _, tc := range []struct{ body, args, callback, script string }{
		{"", "{}", "", ""},
		{"  \n", "{}", "", ""},
		{`null`, "{}", "", ""},
		{`{}`, "{}", "", ""},
		{`{"args":null}`, "{}", "", ""},
		{`{"args": {"name":"world"} }`, `{"name":"world"}`, "", ""},
		{`{"callback":null,"scheduling":null}`, "{}", "", ""},
		{`{"args":{"a":1},"args":{"b":2}}`, `{"b":2}`, "", ""},
		{`{"args":{},"callback":"http://127.0.0.1:9/cb","scheduling":{"language":"app","script":"s1"}}`, "{}", "http://127.0.0.1:9/cb", "s1"},
		{`{"scheduling":{"language":"none"}}`, "{}", "", ""},
	} {
		got, err := decodeInvocation([]byte(tc.body))
		if err != nil || string(got.Args) != tc.args || got.Callback != tc.callback || got.Script != tc.script {
			t.Errorf("%q: %+v, %v; want args %s, callback %q, script %q", tc.body, got, err, tc.args, tc.callback, tc.script)
		}
	}
	small := []byte(`{"args":{"a":1},"callback":"http://127.0.0.1:9/` + strings.Repeat("x", 1000) + `"}`)
	got, err := decodeInvocation(small)
	if err != nil {
		t.Fatal(err)
	}
	small[len(`{"args":{"a":`)] = '2'
	if string(got.Args) != `{"a":1}` {
		t.Errorf("args %s changed with the body: small args must be a copy", got.Args)
	}
	large := []byte(`{"args":{"a":"` + strings.Repeat("x", 1000) + `"},"callback":"http://127.0.0.1:9/cb"}`)
	got, err = decodeInvocation(large)
	if err != nil {
		t.Fatal(err)
	}
	if cap(got.Args) != len(got.Args) {
		t.Errorf("args of %d bytes have a capacity of %d: an append would write into the body", len(got.Args), cap(got.Args))
	}
}
