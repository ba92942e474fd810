package group_test

import (
	"context"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
)

// settled makes write until the group answers it otherwise than 503 (no
// leader, or the leader lost mid-write: an election, which two shared
// cores under other builds cause now and then), for up to two minutes. It
// returns whether a 503 came before the last answer, and that answer: then an
// earlier try may have been applied, and a 404 or 409 may be right.
func settled(t *testing.T, write func(ctx context.Context) error) (retried bool, err error) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err = write(ctx)
		cancel()
		if !client.IsStatus(err, 503) || time.Now().After(deadline) {
			return retried, err
		}
		retried = true
		time.Sleep(200 * time.Millisecond)
	}
}
