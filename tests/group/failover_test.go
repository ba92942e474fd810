package group_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestClientFollowsTheGroup: a client given the three cores' addresses,
// the leader's first, keeps reading, invoking and writing after kill -9
// of the leader it was using, where a client given the leader's address
// alone can no longer reach the group.
func TestClientFollowsTheGroup(t *testing.T) {
	g := startGroup(t)
	g.startWorker(t, "127.0.0.4")
	lead := g.leader(t, nil)
	urls := []string{lead.url}
	for _, m := range g.cores {
		if m != lead {
			urls = append(urls, m.url)
		}
	}
	cl, err := client.New(strings.Join(urls, ","), g.admin)
	if err != nil {
		t.Fatalf("a client of the three cores: %v", err)
	}
	single := g.client(t, lead)
	code := testmodules.Read(t, "hello")
	if err := cl.CreateModule(ctxT(t, 30*time.Second), "demo"); err != nil {
		t.Fatal(err)
	}
	if err := create(ctxT(t, 60*time.Second), cl, "hello", code); err != nil {
		t.Fatal(err)
	}
	invoke := func(who string) {
		t.Helper()
		out, err := cl.Invoke(ctxT(t, 30*time.Second), "demo", "hello", json.RawMessage(`{"name":"group"}`))
		if err != nil || string(out) != `{"message":"Hello, group!"}` {
			t.Fatalf("invoke %s: %s %v", who, out, err)
		}
	}
	// Every core holds the function (reads are local) before the kill.
	for _, m := range g.cores {
		mc := g.client(t, m)
		wait.ForState(t, 60*time.Second, "hello on "+m.host, func() (bool, string) {
			_, err := mc.GetFunction(ctxT(t, 10*time.Second), "demo", "hello")
			return err == nil, fmt.Sprint(err)
		})
	}
	invoke("before the kill")

	lead.Kill()

	// Reads and invocations go on through a survivor at once.
	if _, err := cl.GetFunction(ctxT(t, 30*time.Second), "demo", "hello"); err != nil {
		t.Fatalf("read after the kill: %v", err)
	}
	invoke("after the kill")
	// Writes go on once the survivors have elected a leader: until then a
	// survivor refuses them with 503, and the client tries the other.
	var refused int
	wait.ForState(t, 30*time.Second, "a write through the client after the kill", func() (bool, string) {
		err := create(ctxT(t, 60*time.Second), cl, "after", code)
		if client.IsStatus(err, 503) {
			refused++
		}
		return err == nil, fmt.Sprint(err)
	})
	// A core answers a write it forwarded to the leader before it has
	// applied the write itself: read it back before deleting it.
	wait.ForState(t, 30*time.Second, "the write read back through the client", func() (bool, string) {
		_, err := cl.GetFunction(ctxT(t, 10*time.Second), "demo", "after")
		return err == nil, fmt.Sprint(err)
	})
	if err := cl.DeleteFunction(ctxT(t, 30*time.Second), "demo", "after"); err != nil {
		t.Fatalf("delete after the kill: %v", err)
	}
	invoke("after the new leader")

	// The client of the killed core alone cannot reach the group.
	_, err = single.Invoke(ctxT(t, 30*time.Second), "demo", "hello", json.RawMessage(`{}`))
	var ue *client.UnreachableError
	if !errors.As(err, &ue) {
		t.Fatalf("a client of the killed core alone: %v, want unreachable", err)
	}
	t.Logf("after kill -9 of the leader %s, writes refused by the survivors before the election: %d", lead.host, refused)
}
