package group_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

// TestFollowerAnswersWhatTheGroupAcknowledged: a function created through
// one core is updated through a second, then deleted through the third,
// at once, each as soon as the previous write was acknowledged (the
// cores take turns, so each is the leader's follower in most rounds). A
// follower applies the leader's commits a moment after the leader
// acknowledged them; checking its own store, it would answer 404 (not
// there yet) or 409 (an older version) for what the group acknowledged.
// Every update and delete must succeed.
func TestFollowerAnswersWhatTheGroupAcknowledged(t *testing.T) {
	g := startGroup(t)
	code := testmodules.Read(t, "hello")
	if _, err := settled(t, func(ctx context.Context) error { return g.client(t, g.cores[0]).CreateModule(ctx, "demo") }); err != nil {
		t.Fatal(err)
	}
	const rounds = 21
	refused := map[string]int{}
	for i := range rounds {
		name := fmt.Sprintf("f%d", i)
		cc, uc, dc := g.cores[i%3], g.cores[(i+1)%3], g.cores[(i+2)%3]
		retried, err := settled(t, func(ctx context.Context) error { return create(ctx, g.client(t, cc), name, code) })
		if err != nil && !(retried && client.IsStatus(err, 409)) {
			t.Fatalf("create %s through %s: %v", name, cc.host, err)
		}
		retried, err = settled(t, func(ctx context.Context) error {
			_, err := g.client(t, uc).UpdateFunction(ctx, "demo", name, client.Upload{Events: json.RawMessage(`[]`)})
			return err
		})
		if err != nil && !retried {
			refused["update: "+statusOf(err)]++
			t.Logf("update %s through %s, created through %s: %v", name, uc.host, cc.host, err)
		}
		retried, err = settled(t, func(ctx context.Context) error { return g.client(t, dc).DeleteFunction(ctx, "demo", name) })
		if err != nil && !retried {
			refused["delete: "+statusOf(err)]++
			t.Logf("delete %s through %s, updated through %s: %v", name, dc.host, uc.host, err)
		}
	}
	if len(refused) > 0 {
		t.Fatalf("of %d acknowledged functions, the cores refused: %v", rounds, refused)
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
