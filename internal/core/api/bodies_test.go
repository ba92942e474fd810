package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/edgefaas/edgefaas/internal/core/storage"
)

// bodyCall is a call of subject with a body of n declared bytes.
func bodyCall(subject string, n int64) *call {
	r := httptest.NewRequest(http.MethodPost, "/v1/fn/_/f", strings.NewReader(""))
	r.ContentLength = n
	return &call{r: r, subject: storage.Subject{Name: subject}}
}

func done(c *call) {
	for _, f := range c.release {
		f()
	}
}

// TestBodyShares: with a 16 MiB budget (a 256 MiB single box's) and
// 6 MiB bodies, one subject holds one body at a time, not the whole
// pool; another's large body still fits beside it; a small body is
// admitted while large ones fill the pool; a refusal closes the
// connection. A subject's first body may be as large as the pool.
func TestBodyShares(t *testing.T) {
	const budget, large = 16 << 20, 6 << 20
	b := newBodyAdmission(budget)
	flood := bodyCall("flooder", large)
	if err := b.admit(flood, large); err != nil {
		t.Fatalf("the flooder's first body: %v", err)
	}
	again := bodyCall("flooder", large)
	err := b.admit(again, large)
	ae, ok := err.(*apiError)
	if !ok {
		t.Fatalf("the flooder's second body while it holds its first: %v, want 429", err)
	}
	if ae.status != http.StatusTooManyRequests || ae.header.Get("Retry-After") == "" || ae.header.Get("Connection") != "close" {
		t.Fatalf("the flooder's second body: %v (header %v), want 429 with Retry-After and Connection: close", err, ae.header)
	}
	other := bodyCall("neighbour", large)
	if err := b.admit(other, large); err != nil {
		t.Fatalf("another subject's large body beside the flooder's: %v", err)
	}
	third := bodyCall("third", large)
	if err := b.admit(third, large); err == nil {
		t.Fatalf("three 6 MiB bodies admitted in a 14 MiB pool")
	}
	small := bodyCall("third", 64)
	if err := b.admit(small, large); err != nil {
		t.Fatalf("a small body with the pool full: %v", err)
	}
	done(flood)
	done(other)
	done(small)
	whole := bodyCall("uploader", 64<<20)
	if err := b.admit(whole, 65<<20); err != nil {
		t.Fatalf("one upload larger than the pool: %v", err)
	}
	if err := b.admit(bodyCall("neighbour", 64), large); err != nil {
		t.Fatalf("a small body beside an upload holding the pool: %v", err)
	}
	done(whole)
	if err := b.admit(bodyCall("flooder", large), large); err != nil {
		t.Fatalf("after every body was given back: %v", err)
	}
}
