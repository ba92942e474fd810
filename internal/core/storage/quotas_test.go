package storage

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

func quotaStore(t *testing.T, q Quota) *Store {
	t.Helper()
	s := open(t, t.TempDir())
	t.Cleanup(func() { s.Close() })
	for _, n := range []string{"alice", "bob"} {
		if _, err := s.CreateSubject(n, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.CreateSubject("root", true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSubjectQuota("alice", q); err != nil {
		t.Fatal(err)
	}
	return s
}

func wantQuota(t *testing.T, err error, name string, limit int64) {
	t.Helper()
	var qe *QuotaError
	if !errors.As(err, &qe) || !errors.Is(err, ErrQuota) || qe.Quota != name || qe.Limit != limit {
		t.Fatalf("err = %v, want quota %s %d exceeded", err, name, limit)
	}
}

func TestQuotaCountsFunctionsAndCode(t *testing.T) {
	q := DefaultQuota
	q.Functions, q.CodeBytes = 2, 10
	s := quotaStore(t, q)
	mk := func(owner, name, code string) error {
		_, err := s.CreateFunction(s.seenModule(DefaultModule), NewFunction{Name: name, Owner: owner, Code: []byte(code), ABI: "funless"})
		return err
	}
	if err := mk("alice", "a", "1234"); err != nil {
		t.Fatal(err)
	}
	// Code bytes: 4 + 7 > 10, refused before anything is stored.
	wantQuota(t, mk("alice", "b", "1234567"), "code_bytes", 10)
	if _, err := s.GetFunction(DefaultModule, "b"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused function stored: %v", err)
	}
	if err := mk("alice", "b", "123456"); err != nil {
		t.Fatal(err)
	}
	wantQuota(t, mk("alice", "c", "1"), "functions", 2)
	// Another tenant and an admin are not counted against alice.
	if err := mk("bob", "c", "1"); err != nil {
		t.Fatal(err)
	}
	if err := mk("root", "d", "12345678901234567890"); err != nil {
		t.Fatal(err)
	}
	// An update replaces its own record's share: same size passes, a
	// larger one is refused.
	if _, err := s.UpdateFunction(s.seenFunction(DefaultModule, "a"), FunctionUpdate{Code: []byte("abcd"), ABI: "funless"}); err != nil {
		t.Fatal(err)
	}
	_, err := s.UpdateFunction(s.seenFunction(DefaultModule, "a"), FunctionUpdate{Code: []byte("abcde"), ABI: "funless"})
	wantQuota(t, err, "code_bytes", 10)
	// A delete frees a slot.
	if _, err := s.DeleteFunction(s.seenFunction(DefaultModule, "b")); err != nil {
		t.Fatal(err)
	}
	if err := mk("alice", "e", "1"); err != nil {
		t.Fatal(err)
	}
	u, err := s.SubjectUsage("alice")
	if err != nil {
		t.Fatal(err)
	}
	if u.Functions != 2 || u.CodeBytes != 5 {
		t.Errorf("usage %+v, want 2 functions, 5 bytes", u)
	}
	// Lowered below the usage: an update that does not grow passes.
	q.Functions, q.CodeBytes = 1, 1
	if err := s.SetSubjectQuota("alice", q); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateFunction(s.seenFunction(DefaultModule, "a"), FunctionUpdate{Code: []byte("wxyz"), ABI: "funless"}); err != nil {
		t.Fatalf("update that does not grow: %v", err)
	}
	// Cleared: the default applies again.
	if err := s.ClearSubjectQuota("alice"); err != nil {
		t.Fatal(err)
	}
	if got, set, err := s.SubjectQuota("alice"); err != nil || set || got != DefaultQuota {
		t.Errorf("after clear: %+v %v %v", got, set, err)
	}
}

func TestQuotaCountsCronAndSinks(t *testing.T) {
	q := DefaultQuota
	q.CronTriggers, q.SinksPerFunction, q.Sinks = 2, 2, 3
	s := quotaStore(t, q)
	cron := Event{Type: EventCron, Schedule: "@every 1m"}
	sink := Sink{Type: "webhook", Params: SinkParams{URL: "http://127.0.0.1:1/"}}
	mk := func(name string, events []Event, sinks []Sink) error {
		_, err := s.CreateFunction(s.seenModule(DefaultModule), NewFunction{Name: name, Owner: "alice", Code: []byte("x"), ABI: "funless", Events: events, Sinks: sinks})
		return err
	}
	if err := mk("a", []Event{cron, cron}, []Sink{sink, sink}); err != nil {
		t.Fatal(err)
	}
	wantQuota(t, mk("b", []Event{cron}, nil), "cron_triggers", 2)
	wantQuota(t, mk("b", nil, []Sink{sink, sink, sink}), "sinks_per_function", 2)
	wantQuota(t, mk("b", nil, []Sink{sink, sink}), "sinks", 3)
	if err := mk("b", nil, []Sink{sink}); err != nil {
		t.Fatal(err)
	}
	// Events or sinks replaced by an update count once.
	ev := []Event{cron}
	if _, err := s.UpdateFunction(s.seenFunction(DefaultModule, "a"), FunctionUpdate{Events: &ev}); err != nil {
		t.Fatal(err)
	}
	if err := mk("c", []Event{cron}, nil); err != nil {
		t.Fatal(err)
	}
}

func TestQuotaRefusesNegative(t *testing.T) {
	s := quotaStore(t, DefaultQuota)
	q := DefaultQuota
	q.Sinks = -1
	if err := s.SetSubjectQuota("alice", q); !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	if err := s.SetSubjectQuota("nobody", DefaultQuota); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
}

// TestQuotaLastSlotRace: N creates race for the last slot; the count is
// checked inside the write, so exactly one wins.
func TestQuotaLastSlotRace(t *testing.T) {
	q := DefaultQuota
	q.Functions = 1
	s := quotaStore(t, q)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.CreateFunction(s.seenModule(DefaultModule), NewFunction{Name: fmt.Sprintf("f%d", i), Owner: "alice", Code: []byte("x"), ABI: "funless"})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrQuota):
			t.Fatal(err)
		}
	}
	if won != 1 {
		t.Fatalf("%d creates won the last slot, want 1", won)
	}
}

// BenchmarkQuotaUsage is the count a create or update pays: a scan of
// 1000 function records, 10 of them the subject's.
func BenchmarkQuotaUsage(b *testing.B) {
	s, err := Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := range 1000 {
		owner := fmt.Sprintf("s%d", i%100)
		if _, err := s.CreateFunction(s.seenModule(DefaultModule), NewFunction{Name: fmt.Sprintf("f%d", i), Owner: owner, Code: []byte("x"), ABI: "funless"}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		u, err := s.SubjectUsage("s7")
		if err != nil || u.Functions != 10 {
			b.Fatal(u, err)
		}
	}
}

// TestQuotaOwnerOnly: the scan's byte prefilter on "owner" does not count
// a record that names the subject elsewhere (a cron trigger's args), nor
// one whose owner's name merely starts with the subject's.
func TestQuotaOwnerOnly(t *testing.T) {
	q := DefaultQuota
	q.Functions = 1
	s := quotaStore(t, q)
	if _, err := s.CreateSubject("alice2", false); err != nil {
		t.Fatal(err)
	}
	decoy := []Event{{Type: EventCron, Schedule: "@every 1m", Args: []byte(`{"owner":"alice"}`)}}
	for _, owner := range []string{"bob", "alice2"} {
		if _, err := s.CreateFunction(s.seenModule(DefaultModule), NewFunction{Name: "by" + owner, Owner: owner, Code: []byte("x"), ABI: "funless", Events: decoy}); err != nil {
			t.Fatal(err)
		}
	}
	u, err := s.SubjectUsage("alice")
	if err != nil || u != (Usage{}) {
		t.Fatalf("alice's usage %+v, %v; want none", u, err)
	}
	if _, err := s.CreateFunction(s.seenModule(DefaultModule), NewFunction{Name: "a", Owner: "alice", Code: []byte("x"), ABI: "funless"}); err != nil {
		t.Fatal(err)
	}
}
