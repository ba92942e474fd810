package storage

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/secrets"
)

// raw returns what pebble holds at key, as bytes.
func raw(t *testing.T, s *Store, key []byte) []byte {
	t.Helper()
	v, closer, err := s.db.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	return append([]byte(nil), v...)
}

// TestSecretsMigratedSealedAndRotated: a database written without a key
// (plain secrets, as earlier builds wrote them) is sealed at the next
// open with a key; the records read back whole; a rotation seals them
// under a new key and the old key no longer opens anything; records
// written afterwards are sealed too.
func TestSecretsMigratedSealedAndRotated(t *testing.T) {
	dir := t.TempDir()
	sinks := []Sink{
		{Type: SinkCouchDB, Params: SinkParams{URL: "http://db:5984/r", Username: "u", Password: "pw-plain"}},
		{Type: SinkWebhook, Params: SinkParams{URL: "http://h/in?token=q-plain", Secret: "s-plain", Headers: map[string]string{"X-K": "h-plain"}}},
		{Type: SinkWebhook, Params: SinkParams{URL: "http://h/open"}},
	}
	events := []Event{{Type: EventMQTT, Params: &MQTTParams{Host: "b", Port: 1883, Topic: "t", Username: "u", Password: "e-plain"}}}
	plain := [][]byte{[]byte("pw-plain"), []byte("q-plain"), []byte("s-plain"), []byte("h-plain"), []byte("e-plain")}
	leaks := func(b []byte) []string {
		var out []string
		for _, p := range plain {
			if bytes.Contains(b, p) {
				out = append(out, string(p))
			}
		}
		return out
	}

	old, err := OpenWith(filepath.Join(dir, "db"), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := old.CreateFunction(old.seenModule(DefaultModule), NewFunction{Name: "f", Owner: "o", Code: []byte("c"), Sinks: sinks, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	job := SinkJob{ID: "01J", Module: "_", Function: "f", FinishedAt: time.Now(), Result: []byte(`{}`), Sinks: sinks,
		Deliveries: []SinkDelivery{{Status: SinkPending}, {Status: SinkPending}, {Status: SinkPending}}}
	if err := old.WriteActivationsWithSinks(nil, []SinkJob{job}, true); err != nil {
		t.Fatal(err)
	}
	if l := leaks(raw(t, old, keyFunction("_", "f"))); len(l) != len(plain) {
		t.Fatalf("without a key the record holds %v", l)
	}
	old.Close()

	kr, _, err := secrets.LoadOrCreate(filepath.Join(dir, secrets.FileName))
	if err != nil {
		t.Fatal(err)
	}
	s, err := OpenWith(filepath.Join(dir, "db"), nil, Options{Secrets: kr})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check := func(when string) {
		t.Helper()
		for _, k := range [][]byte{keyFunction("_", "f"), keyOutbox("01J")} {
			if l := leaks(raw(t, s, k)); len(l) > 0 {
				t.Errorf("%s: %s holds %v", when, k, l)
			}
		}
		got, err := s.GetFunction("_", "f")
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if got.Sinks[0].Params.Password != "pw-plain" || got.Sinks[1].Params.URL != "http://h/in?token=q-plain" ||
			got.Sinks[1].Params.Secret != "s-plain" || got.Sinks[1].Params.Headers["X-K"] != "h-plain" ||
			got.Sinks[2].Params.URL != "http://h/open" || got.Events[0].Params.Password != "e-plain" ||
			got.Sinks[0].Params.Sealed != "" || got.Events[0].Params.Sealed != "" {
			t.Errorf("%s: read back %+v %+v", when, got.Sinks, *got.Events[0].Params)
		}
		jobs, err := s.SinkJobs()
		if err != nil || len(jobs) != 1 || jobs[0].Sinks[1].Params.Secret != "s-plain" {
			t.Errorf("%s: outbox %+v, %v", when, jobs, err)
		}
	}
	n, err := s.SealSecrets()
	if err != nil || n != 2 {
		t.Fatalf("migration sealed %d records, %v; want 2", n, err)
	}
	check("after the migration")
	if n, err := s.SealSecrets(); err != nil || n != 0 {
		t.Fatalf("a second pass sealed %d, %v", n, err)
	}
	before := raw(t, s, keyFunction("_", "f"))
	id, n, err := s.RotateSecretsKey()
	if err != nil || n != 2 || id != kr.Current() {
		t.Fatalf("rotation: %s, %d, %v", id, n, err)
	}
	check("after the rotation")
	if bytes.Equal(before, raw(t, s, keyFunction("_", "f"))) {
		t.Error("the rotation left the record as it was")
	}
	var stale Function
	if err := jsonUnmarshal(nil, before, &stale); err != nil {
		t.Fatal(err)
	}
	if err := s.openRecord(&stale); err == nil {
		t.Error("the retired key still opens a record sealed under it")
	}
	up, err := s.UpdateFunction(f, FunctionUpdate{Sinks: &sinks})
	if err != nil || up.New.Sinks[0].Params.Password != "pw-plain" {
		t.Fatalf("update: %+v, %v", up.New, err)
	}
	check("after an update")
}
