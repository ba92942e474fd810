package client_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
)

func sign(secret string, t int64, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%d.%s", t, body)
	return fmt.Sprintf("t=%d,v1=%s", t, hex.EncodeToString(m.Sum(nil)))
}

// TestVerifyWebhook: a fresh signature passes; a replay past the
// tolerance, a changed timestamp or body, another secret and malformed
// headers are refused with the error that says which.
func TestVerifyWebhook(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := `{"k":"v"}`
	good := sign("s", now.Unix(), body)
	for _, tc := range []struct {
		name, secret, header, body string
		at                         time.Time
		want                       error
	}{
		{"fresh", "s", good, body, now, nil},
		{"within tolerance", "s", good, body, now.Add(client.WebhookTolerance - time.Second), nil},
		{"replayed later", "s", good, body, now.Add(client.WebhookTolerance + time.Second), client.ErrWebhookTimestamp},
		{"from the future", "s", good, body, now.Add(-client.WebhookTolerance - time.Second), client.ErrWebhookTimestamp},
		{"timestamp changed", "s", fmt.Sprintf("t=%d,v1=%s", now.Unix()+1, good[len("t=1800000000,v1="):]), body, now, client.ErrWebhookSignature},
		{"body changed", "s", good, `{"k":"w"}`, now, client.ErrWebhookSignature},
		{"other secret", "x", good, body, now, client.ErrWebhookSignature},
		{"second entry matches", "s", "t=1800000000,v1=00," + good[len("t=1800000000,"):], body, now, nil},
		{"body-only form", "s", "sha256=abcd", body, now, client.ErrWebhookSignature},
		{"empty", "s", "", body, now, client.ErrWebhookSignature},
	} {
		err := client.VerifyWebhook(tc.secret, tc.header, []byte(tc.body), client.WebhookTolerance, tc.at)
		if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}
