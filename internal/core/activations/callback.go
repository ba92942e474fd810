package activations

import (
	"context"
	"encoding/json"
	"time"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// callback POSTs the finished record {"data": record} to url, retrying
// with exponential backoff up to CallbackTries attempts. Callbacks are not
// durable: one still being retried when the core stops is abandoned
// (logged); the record itself is durable and can be read by its id.
func (q *Queue) callback(rec storage.Activation, url string) {
	defer q.callbacks.Done()
	if q.cfg.Callback == nil {
		q.log.Warn("activation has a callback but the core has no egress for callbacks", "id", rec.ID)
		return
	}
	if q.cfg.CallbackBound != nil {
		if err := q.cfg.CallbackBound(rec.Subject, url); err != nil {
			q.log.Warn("callback refused by the subject's egress bound", "id", rec.ID, "subject", rec.Subject, "err", err)
			return
		}
	}
	body, err := json.Marshal(map[string]any{"data": rec})
	if err != nil {
		q.log.Error("encode callback body", "id", rec.ID, "err", err)
		return
	}
	for try := 1; ; try++ {
		if q.cfg.Active != nil && !q.cfg.Active(rec.Subject) {
			q.log.Warn("callback dropped: its subject was revoked", "id", rec.ID, "subject", rec.Subject, "tries", try-1)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = q.cfg.Callback(ctx, url, body)
		cancel()
		if err == nil {
			q.log.Debug("callback delivered", "id", rec.ID, "tries", try)
			return
		}
		if try >= q.cfg.CallbackTries {
			q.log.Warn("callback not delivered; giving up", "id", rec.ID, "tries", try, "err", err)
			return
		}
		select {
		case <-time.After(backoff(q.cfg.CallbackBackoff, try, time.Minute)):
		case <-q.stop:
			q.log.Warn("callback abandoned: the core is stopping", "id", rec.ID, "err", err)
			return
		}
	}
}
