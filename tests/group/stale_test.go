package group_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

// TestFollowerAnswersWhatTheGroupAcknowledged: a function created through
// the leader is updated through a follower, then deleted through the
// other follower, at once, each as soon as the previous write was
// acknowledged. A follower applies the leader's commits a moment later;
// checking its own store, it would answer 404 (not there yet) or 409 (an
// older version) for what the group has acknowledged. Every update and
// delete must succeed.
func TestFollowerAnswersWhatTheGroupAcknowledged(t *testing.T) {
	g := startGroup(t)
	lead := g.leader(t, nil)
	var followers []*member
	for _, m := range g.cores {
		if m != lead {
			followers = append(followers, m)
		}
	}
	code := testmodules.Read(t, "hello")
	lc, uc, dc := g.client(t, lead), g.client(t, followers[0]), g.client(t, followers[1])
	if err := lc.CreateModule(ctxT(t, 30*time.Second), "demo"); err != nil {
		t.Fatal(err)
	}
	const rounds = 20
	refused := map[string]int{}
	for i := range rounds {
		name := fmt.Sprintf("f%d", i)
		if err := create(ctxT(t, 60*time.Second), lc, name, code); err != nil {
			t.Fatalf("create %s through the leader %s: %v", name, lead.host, err)
		}
		if _, err := uc.UpdateFunction(ctxT(t, 60*time.Second), "demo", name, client.Upload{Events: json.RawMessage(`[]`)}); err != nil {
			refused["update: "+statusOf(err)]++
			t.Logf("update %s through the follower %s: %v", name, followers[0].host, err)
		}
		if err := dc.DeleteFunction(ctxT(t, 60*time.Second), "demo", name); err != nil {
			refused["delete: "+statusOf(err)]++
			t.Logf("delete %s through the follower %s: %v", name, followers[1].host, err)
		}
	}
	if len(refused) > 0 {
		t.Fatalf("of %d acknowledged functions, followers refused: %v", rounds, refused)
	}
}

// statusOf names err's HTTP status, or the error if it has none.
func statusOf(err error) string {
	for _, s := range []int{404, 409, 503} {
		if client.IsStatus(err, s) {
			return fmt.Sprint(s)
		}
	}
	return err.Error()
}
