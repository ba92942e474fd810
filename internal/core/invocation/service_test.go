package invocation

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/testing/storetest"
)

// invokerFunc is a cluster.Invoker of one function: the service's logic
// is tested without a node; the cluster is tested on real ones.
type invokerFunc func(req cluster.InvokeRequest) (cluster.InvokeResult, error)

func (f invokerFunc) Invoke(_ context.Context, req cluster.InvokeRequest) (cluster.InvokeResult, error) {
	return f(req)
}

func newService(t *testing.T, inv cluster.Invoker) (*Service, storage.Function) {
	t.Helper()
	st := storetest.Open(t, t.TempDir(), nil)
	f, err := st.CreateFunction(storage.Module{Name: storage.DefaultModule}, storage.NewFunction{Name: "f", Owner: "alice", Code: []byte("v1"), ABI: "funless"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateSubject("alice", false); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{Store: st, Invoker: inv})
	if err != nil {
		t.Fatal(err)
	}
	return s, f
}

// TestSyncAndQueuedShareTheRun: a call whose code went away mid-call runs
// the current version once, whether it came synchronously or from the
// queue, and both records end the same way.
func TestSyncAndQueuedShareTheRun(t *testing.T) {
	var seen []string
	var old string // the code that went away: the cluster no longer has it
	inv := invokerFunc(func(req cluster.InvokeRequest) (cluster.InvokeResult, error) {
		seen = append(seen, req.Function.Hash)
		if req.Function.Hash == old {
			return cluster.InvokeResult{}, fmt.Errorf("code %s: %w", req.Function.Hash[:8], storage.ErrNotFound)
		}
		return cluster.InvokeResult{Output: json.RawMessage(`{"ok":true}`), Worker: "w1"}, nil
	})
	s, f := newService(t, inv)
	old = f.Hash
	if _, err := s.cfg.Store.UpdateFunction(f, storage.FunctionUpdate{Code: []byte("v2")}); err != nil {
		t.Fatal(err)
	}
	res, err := s.Invoke(context.Background(), Call{Function: f, Subject: "alice"})
	if err != nil || string(res.Output) != `{"ok":true}` || res.Function.Version != f.Version+1 {
		t.Fatalf("sync: %v %s version %d", err, res.Output, res.Function.Version)
	}
	out := s.runQueued(context.Background(), storage.Activation{ID: "q1"}, storage.QueuedCall{Module: f.Module, Function: f.Name, Subject: "alice"},
		func() (json.RawMessage, error) { return json.RawMessage(`{}`), nil })
	if out.Record.Status != storage.StatusSuccess || out.Record.Version != f.Version+1 || out.Record.Worker != "w1" {
		t.Fatalf("queued: %+v", out.Record)
	}
	// The queued call loads the current version first: one attempt on it.
	if len(seen) != 3 || seen[0] != f.Hash || seen[1] == f.Hash || seen[2] != seen[1] {
		t.Fatalf("hashes invoked: %v (old %s)", seen, f.Hash)
	}
}

// TestOutcomeNamesEveryFailure: a record keeps the failure's record status
// and a message a person can act on.
func TestOutcomeNamesEveryFailure(t *testing.T) {
	for _, tc := range []struct {
		err            error
		status, detail string
	}{
		{nil, storage.StatusSuccess, ""},
		{&cluster.FunctionError{Message: "bad input"}, storage.StatusFunctionError, "bad input"},
		{&cluster.RuntimeError{Message: "trap"}, storage.StatusRuntimeError, "trap"},
		{&cluster.PlacementError{Message: "all invalid"}, storage.StatusNoWorker, "all invalid"},
		{fmt.Errorf("wrapped: %w", cluster.ErrNoWorker), storage.StatusNoWorker, cluster.ErrNoWorker.Error()},
		{fmt.Errorf("%w: full", cluster.ErrBusy), storage.StatusBusy, "all workers able to run this function are busy: full"},
		{context.Canceled, storage.StatusLost, "the client closed the request; the call may or may not have run"},
		{fmt.Errorf("code: %w", storage.ErrNotFound), storage.StatusRuntimeError, "the function was deleted"},
		{fmt.Errorf("disk"), storage.StatusRuntimeError, "the platform failed to run the call; the core's log has the details"},
	} {
		status, detail := outcome(tc.err)
		if status != tc.status || detail != tc.detail {
			t.Errorf("outcome(%v) = %q %q, want %q %q", tc.err, status, detail, tc.status, tc.detail)
		}
	}
}

// TestNoInvoker: without a cluster every call ends "no worker", recorded.
func TestNoInvoker(t *testing.T) {
	s, f := newService(t, nil)
	_, err := s.Invoke(context.Background(), Call{Function: f, Subject: "alice"})
	if err != cluster.ErrNoWorker {
		t.Fatalf("got %v", err)
	}
	out := s.runQueued(context.Background(), storage.Activation{ID: "q1"}, storage.QueuedCall{Module: f.Module, Function: f.Name, Subject: "alice"},
		func() (json.RawMessage, error) { return json.RawMessage(`{}`), nil })
	if out.Record.Status != storage.StatusNoWorker {
		t.Fatalf("queued: %+v", out.Record)
	}
}

// TestQueuedCallOfRevokedSubject: a queued call whose subject was revoked
// (or never existed) ends canceled, saying why, and does not run.
func TestQueuedCallOfRevokedSubject(t *testing.T) {
	ran := 0
	s, f := newService(t, invokerFunc(func(cluster.InvokeRequest) (cluster.InvokeResult, error) {
		ran++
		return cluster.InvokeResult{Output: json.RawMessage(`{}`)}, nil
	}))
	if err := s.cfg.Store.RevokeToken("alice"); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"alice", "nobody"} {
		out := s.runQueued(context.Background(), storage.Activation{ID: "q1"}, storage.QueuedCall{Module: f.Module, Function: f.Name, Subject: sub}, nil)
		if out.Record.Status != storage.StatusCanceled || out.Record.Error != fmt.Sprintf("canceled: subject %q was revoked", sub) {
			t.Errorf("%s: %+v", sub, out.Record)
		}
	}
	if ran != 0 {
		t.Fatalf("the invoker ran %d calls of a revoked subject", ran)
	}
}
