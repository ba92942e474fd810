package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestListsOneAtATimePerSubject: while one of a subject's lists scans, its
// next waits for it (edgefaas_api_list_waits_total), and another subject's
// list is answered meanwhile. A tenant's three lists at once took both
// cores of a small box from its neighbours.
func TestListsOneAtATimePerSubject(t *testing.T) {
	ts := newTestServer(t, Config{})
	s := ts.server
	alice, err := ts.store.CreateSubject("alice", false)
	if err != nil {
		t.Fatal(err)
	}
	bob, err := ts.store.CreateSubject("bob", false)
	if err != nil {
		t.Fatal(err)
	}
	list := func(token string) int {
		req, _ := http.NewRequest(http.MethodGet, ts.url+"/v1/activations", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		defer resp.Body.Close()
		return resp.StatusCode
	}
	// alice's list in progress: the test holds her slot.
	if err := s.lists.acquire(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	answered := make(chan int, 1)
	go func() { answered <- list(alice) }()
	wait.For(t, 30*time.Second, "alice's second list to wait", func() bool { return s.lists.waits.Load() == 1 })
	if status := list(bob); status != http.StatusOK {
		t.Fatalf("bob's list while alice's scans: %d", status)
	}
	select {
	case status := <-answered:
		t.Fatalf("alice's second list answered %d while her first still scanned", status)
	default:
	}
	s.lists.release("alice")
	if status := <-answered; status != http.StatusOK {
		t.Fatalf("alice's second list, after her first: %d", status)
	}
	if w := s.lists.waits.Load(); w != 1 {
		t.Errorf("%d lists waited; want 1 (bob's did not)", w)
	}
}
