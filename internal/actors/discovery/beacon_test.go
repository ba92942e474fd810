package discovery

import (
	"testing"
	"time"
)

func TestSealOpen(t *testing.T) {
	now := time.Now()
	b := Beacon{Node: "core@10.0.0.1", Host: "10.0.0.1", Port: 4001, Time: now}
	sealed := Seal(b, "cookie")
	got, err := Open(sealed, "cookie", now)
	if err != nil || got.Node != b.Node || got.Port != 4001 {
		t.Fatalf("Open = %+v, %v", got, err)
	}
	for name, data := range map[string][]byte{
		"other cookie": Seal(b, "other"),
		"tampered":     append([]byte(`{"node":"core@evil"`), sealed[len(`{"node":"core@10.0.0.1"`):]...),
		"stale":        Seal(Beacon{Node: "core@x", Host: "x", Port: 1, Time: now.Add(-2 * time.Minute)}, "cookie"),
		"empty":        nil,
		"noise":        []byte("hello"),
	} {
		if _, err := Open(data, "cookie", now); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzOpen(f *testing.F) {
	f.Add(Seal(Beacon{Node: "core@h", Host: "h", Port: 1, Time: time.Unix(0, 0)}, "c"))
	f.Add([]byte("x\n0000"))
	f.Fuzz(func(t *testing.T, data []byte) {
		Open(data, "c", time.Unix(0, 0))
	})
}
