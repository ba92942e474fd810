package storage

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

func sampleActivation() Activation {
	q := time.Now().UTC().Add(-time.Millisecond)
	st := time.Now().UTC()
	return Activation{ID: "01JD0Q6ZK4V3T8M4W7R2C9XH5N", Module: "_", Function: "hello", Version: 3,
		Hash: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", Subject: "guest", Worker: "worker@127.0.0.2",
		Async: true, Status: StatusSuccess, QueuedAt: q, StartedAt: &st, DurationMS: 0.125, Error: "x",
		Result: json.RawMessage(`{"greeting":"Hello, edge!"}`), ResultTruncated: true, Logs: []string{"a", "", "ünïcode"}, LogsTruncated: true, Attempts: 2,
		Trigger: &TriggerInfo{Type: "cron", Index: 1, Schedule: "* * * * *", Tick: &st, Missed: 2},
		Sinks:   []SinkDelivery{{Type: SinkWebhook, Target: "http://127.0.0.1:9/in", Status: SinkDelivered, Attempts: 2, LastError: "x", DeliveredAt: &st}}}
}

// TestActivationCodec: the binary form gives back the record, and records
// stored as JSON by earlier versions still read.
func TestActivationCodec(t *testing.T) {
	// A field added to Activation must be added to the codec too.
	if n := reflect.TypeOf(Activation{}).NumField(); n != 20 {
		t.Fatalf("Activation has %d fields, the codec knows 20: extend appendActivation and decodeActivation", n)
	}
	a := sampleActivation()
	var got Activation
	if err := decodeActivation([]byte("a/x"), appendActivation(nil, &a), &got); err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("round trip: %v\n got %+v\nwant %+v", err, got, a)
	}
	a.StartedAt, a.Result, a.QueuedAt, a.Trigger, a.Sinks = nil, nil, time.Time{}, nil, nil
	got = Activation{}
	if err := decodeActivation([]byte("a/x"), appendActivation(nil, &a), &got); err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("round trip without times: %v\n got %+v\nwant %+v", err, got, a)
	}
	js, _ := json.Marshal(sampleActivation())
	got = Activation{}
	if err := decodeActivation([]byte("a/x"), js, &got); err != nil || got.ID != a.ID || got.Logs[2] != "ünïcode" {
		t.Fatalf("JSON record: %v %+v", err, got)
	}
	full := appendActivation(nil, &a)
	for i := 1; i < len(full); i++ {
		if err := decodeActivation([]byte("a/x"), full[:i], &Activation{}); err == nil {
			t.Fatalf("a record cut at %d of %d bytes decoded", i, len(full))
		}
	}
}

func BenchmarkEncodeActivation(b *testing.B) {
	a := sampleActivation()
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = appendActivation(buf[:0], &a)
	}
	b.ReportMetric(float64(len(buf)), "bytes/record")
}

func BenchmarkEncodeActivationJSON(b *testing.B) {
	a := sampleActivation()
	var n int
	b.ReportAllocs()
	for b.Loop() {
		v, _ := json.Marshal(a)
		n = len(v)
	}
	b.ReportMetric(float64(n), "bytes/record")
}

// BenchmarkWriteActivations is the writer's cost per record: encoding and
// a pebble batch of 64 committed without fsync.
func BenchmarkWriteActivations(b *testing.B) {
	s, err := Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	recs := make([]Activation, 64)
	for i := range recs {
		recs[i] = sampleActivation()
		recs[i].Async = false
	}
	n := 0
	b.ReportAllocs()
	for b.Loop() {
		for i := range recs {
			recs[i].ID = fmt.Sprintf("01JD0Q6ZK4V3T8M4W7R%07d", n)
			n++
		}
		if err := s.WriteActivations(recs, false); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
}
