package client

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SecretsKeyRotation is what rotating the core's secrets key did: the new
// key's id and how many records were sealed again under it.
type SecretsKeyRotation struct {
	KeyID    string `json:"key_id"`
	Resealed int    `json:"resealed"`
}

// RotateSecretsKey makes the core seal the secrets it keeps at rest
// (sink passwords, webhook secrets, ...) under a new key; admin only.
func (c *Client) RotateSecretsKey(ctx context.Context) (SecretsKeyRotation, error) {
	return do[SecretsKeyRotation](ctx, c, http.MethodPost, "/v1/admin/secrets/rotate", nil)
}

// WebhookTolerance is how far a webhook's signed timestamp may be from
// the receiver's clock before VerifyWebhook refuses it as a replay.
const WebhookTolerance = 5 * time.Minute

// Webhook verification errors.
var (
	// ErrWebhookSignature means the X-Edgefaas-Signature header is
	// malformed or no signature in it matches the body and timestamp.
	ErrWebhookSignature = errors.New("webhook signature does not match")
	// ErrWebhookTimestamp means the signed timestamp is further than the
	// tolerance from now: a replayed (or badly clocked) delivery.
	ErrWebhookTimestamp = errors.New("webhook timestamp outside the tolerance")
)

// VerifyWebhook checks a webhook delivery of a sink with secret: header
// is its X-Edgefaas-Signature, "t=UNIX,v1=HEX" where HEX is the
// HMAC-SHA256, under the secret, of the timestamp, a dot and the raw
// body. It refuses a timestamp further than tolerance from now, so a
// captured delivery cannot be replayed later. Several v1 entries (a
// secret being changed) are accepted if one matches.
func VerifyWebhook(secret, header string, body []byte, tolerance time.Duration, now time.Time) error {
	var ts string
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return fmt.Errorf("%w: want t=UNIX,v1=HEX, got %q", ErrWebhookSignature, header)
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	want := m.Sum(nil)
	ok := false
	for _, s := range sigs {
		ok = ok || hmac.Equal(s, want)
	}
	if !ok {
		return ErrWebhookSignature
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: signed %s ago, tolerance %s", ErrWebhookTimestamp, d.Round(time.Second), tolerance)
	}
	return nil
}
