package storage

import (
	"encoding/json"
	"errors"
	"testing"
)

// TestScripts: create, refuse a taken name, survive a reopen with ids
// still increasing, list by name, delete.
func TestScripts(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	body := json.RawMessage(`{"tags":{}}`)
	a, err := s.CreateScript(Script{Name: "b_script", Owner: "guest", Script: body, Source: "- t: []"})
	if err != nil || a.ID != 1 || a.Owner != "guest" {
		t.Fatalf("create: %+v %v", a, err)
	}
	if _, err := s.CreateScript(Script{Name: "b_script", Owner: "admin", Script: body}); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate name: %v", err)
	}
	if _, err := s.CreateScript(Script{Name: "bad/name", Owner: "guest", Script: body}); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("bad name: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	got, err := s.GetScript("b_script")
	if err != nil || got.ID != 1 || string(got.Script) != string(body) || got.Source != "- t: []" {
		t.Fatalf("after reopen: %+v %v", got, err)
	}
	b, err := s.CreateScript(Script{Name: "a_script", Owner: "admin", Shared: true, Script: body})
	if err != nil || b.ID != 2 || !b.Shared {
		t.Fatalf("second create: %+v %v", b, err)
	}
	list, err := s.ListScripts()
	if err != nil || len(list) != 2 || list[0].Name != "a_script" || list[1].Name != "b_script" {
		t.Fatalf("list: %+v %v", list, err)
	}
	b0, _ := s.GetScript("b_script")
	if _, err := s.DeleteScript(Script{Name: "b_script", ID: b0.ID + 1, Owner: b0.Owner}); !errors.Is(err, ErrChanged) {
		t.Fatalf("delete of another script of that name: %v", err)
	}
	if _, err := s.DeleteScript(b0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetScript("b_script"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if _, err := s.DeleteScript(b0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}
