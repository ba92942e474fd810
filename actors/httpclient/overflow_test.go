package httpclient

import (
	"context"
	"testing"

	"github.com/ergo-services/ergo/gen"

	"github.com/edgefaas/edgefaas/wasm"
)

// TestOverflowAnswersBusy: a request that overflowed the actor's mailbox
// (ergo delivers it to the fallback process) is answered ErrBusy, never
// dropped.
func TestOverflowAnswersBusy(t *testing.T) {
	m := request{ctx: context.Background(), req: &wasm.OutboundRequest{}, reply: make(chan *wasm.OutboundResponse, 1)}
	(&Overflow{}).HandleInfo(nil, gen.MessageFallback{Message: m})
	select {
	case r := <-m.reply:
		if r.Err != ErrBusy {
			t.Fatalf("answer %+v, want ErrBusy", r)
		}
	default:
		t.Fatal("no answer")
	}
}
