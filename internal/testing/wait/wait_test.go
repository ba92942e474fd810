package wait

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestUntilHolds(t *testing.T) {
	n := 0
	if err := Until(context.Background(), time.Minute, "three calls", func() bool { n++; return n == 3 }); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("cond called %d times, want 3", n)
	}
}

func TestUntilNamesWhatAfterLimit(t *testing.T) {
	calls := 0
	err := Until(context.Background(), 20*time.Millisecond, "the impossible", func() bool { calls++; return false })
	if err == nil || !strings.Contains(err.Error(), "the impossible") {
		t.Fatalf("err = %v, want one naming the condition", err)
	}
	if calls < 2 {
		t.Fatalf("cond called %d times, want at least at the start and at the limit", calls)
	}
}

func TestUntilStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Until(ctx, time.Hour, "never", func() bool { return false })
	if err == nil || !strings.Contains(err.Error(), context.Canceled.Error()) {
		t.Fatalf("err = %v, want the context's", err)
	}
}
