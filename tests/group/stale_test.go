package group_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
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

// TestRacingCreatesAnswerConflict: the same function is created through
// the three cores at once, round after round. The group takes one; the
// others are refused by the leader because the name is taken, and a
// follower that had not yet applied the winner looked for it in its own
// store, found nothing the caller could see, and answered an admin 404
// "the name is not available" instead of 409.
func TestRacingCreatesAnswerConflict(t *testing.T) {
	g := startGroup(t)
	code := testmodules.Read(t, "test/echo")
	if _, err := settled(t, func(ctx context.Context) error { return g.client(t, g.cores[0]).CreateModule(ctx, "demo") }); err != nil {
		t.Fatal(err)
	}
	for _, m := range g.cores {
		cl := g.client(t, m)
		wait.For(t, 30*time.Second, "module demo on "+m.host, func() bool {
			_, err := cl.GetModule(ctxT(t, 10*time.Second), "demo")
			return err == nil
		})
	}
	const rounds = 30
	answers := map[string]int{}
	var wrong []string
	for i := range rounds {
		name := fmt.Sprintf("r%d", i)
		errs := make([]error, len(g.cores))
		var wg sync.WaitGroup
		for j, m := range g.cores {
			cl := g.client(t, m)
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[j] = create(ctxT(t, 60*time.Second), cl, name, code)
			}()
		}
		wg.Wait()
		for j, err := range errs {
			a := "201"
			if err != nil {
				a = statusOf(err)
			}
			answers[a]++
			if a != "201" && a != "409" && a != "503" {
				wrong = append(wrong, fmt.Sprintf("%s through %s: %v", name, g.cores[j].host, err))
			}
		}
	}
	t.Logf("%d racing creates answered %v", rounds*len(g.cores), answers)
	if len(wrong) > 0 {
		t.Fatalf("creates of a name another create took, not answered 409:\n%s", strings.Join(wrong, "\n"))
	}
}
