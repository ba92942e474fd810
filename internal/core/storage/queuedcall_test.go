package storage

import (
	"encoding/json"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

// TestQueuedCallEncoding: a queued call's stored form splices its args in
// as they are and decodes to the same call as encoding/json's form does,
// whatever its other members hold; its args are copied once.
func TestQueuedCallEncoding(t *testing.T) {
	for _, call := range []QueuedCall{
		{Module: "_", Function: "f", Subject: "alice", Args: json.RawMessage(`{"a":[1,2,{"b":"c"}]}`)},
		{Module: `m"args":null`, Function: "f", Subject: `"args":null`, Args: json.RawMessage(`{"x":"\"args\":null"}`), Callback: "http://h/x", Script: "s", FunctionID: "id"},
		{Module: "_", Function: "f", Subject: "alice"},
	} {
		got, err := encodeQueuedCall(call)
		if err != nil {
			t.Fatal(err)
		}
		var back QueuedCall
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%s: %v", got, err)
		}
		want, _ := json.Marshal(call)
		var wantBack QueuedCall
		json.Unmarshal(want, &wantBack)
		if !reflect.DeepEqual(back, wantBack) {
			t.Errorf("encoded %s\ndecodes to %+v\nwant %+v", got, back, wantBack)
		}
	}
	big := QueuedCall{Module: "_", Function: "f", Subject: "s", Args: json.RawMessage(`{"pad":"` + strings.Repeat("x", 4<<20) + `"}`)}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	encodeQueuedCall(big)
	runtime.ReadMemStats(&after)
	if ratio := float64(after.TotalAlloc-before.TotalAlloc) / float64(len(big.Args)); ratio > 1.5 {
		t.Errorf("encoding %d bytes of args allocated %.2f× their size; want one copy", len(big.Args), ratio)
	}
}
