package membudget

import (
	"runtime/debug"
	"testing"
)

func TestFormatSizeRoundTrips(t *testing.T) {
	for _, b := range []int64{128 * MiB, 1 << 30, 3 << 30, 1536 * MiB, 100, 200 * MiB} {
		s := FormatSize(b)
		got, err := ParseSize(s)
		if err != nil || got != b {
			t.Errorf("ParseSize(FormatSize(%d) = %q) = %d, %v", b, s, got, err)
		}
	}
}

func TestSplitAddsUp(t *testing.T) {
	for _, total := range []int64{64 * MiB, 128 * MiB, 512 * MiB, 1 << 30, 16 << 30} {
		b := Budget{Bytes: total}
		for _, role := range []Role{Core, Worker, SingleBox} {
			s := b.Split(role)
			sum := s.Machinery + s.Store + s.Validator + s.Guests
			if role&Worker != 0 && total >= 128*MiB && sum != total {
				t.Errorf("%d role %d: parts sum to %d", total, role, sum)
			}
			if role&Worker == 0 && s.Guests != 0 {
				t.Errorf("%d: a core alone got %d for guests", total, s.Guests)
			}
			if role&Core != 0 && (s.ValidatorConcurrency < 1 || s.Validator != int64(s.ValidatorConcurrency)*ValidatorChild) {
				t.Errorf("%d role %d: validator %d × %d", total, role, s.ValidatorConcurrency, s.Validator)
			}
			if role&Core == 0 && (s.Store != 0 || s.Validator != 0) {
				t.Errorf("%d: a worker alone got store %d, validator %d", total, s.Store, s.Validator)
			}
			if role&Worker != 0 && total >= 128*MiB && s.Process() != s.Machinery+s.Store+s.Guests {
				t.Errorf("%d role %d: Process() = %d", total, role, s.Process())
			}
			if s.Process() > total || s.Process() < s.Machinery {
				t.Errorf("%d role %d: Process() = %d", total, role, s.Process())
			}
		}
	}
	// A small single box validates one upload at a time.
	if s := (Budget{Bytes: 128 * MiB}).Split(SingleBox); s.ValidatorConcurrency != 1 || s.Guests <= 0 {
		t.Errorf("128 MiB single box: %+v", s)
	}
	// A larger store gets a larger pebble cache, bounded.
	small, large := Budget{Bytes: 128 * MiB}.Split(Core), Budget{Bytes: 64 << 30}.Split(Core)
	if !(small.PebbleCache() < large.PebbleCache() && large.Store <= storeMax) {
		t.Errorf("pebble cache: %d at 128 MiB, %d at 64 GiB", small.PebbleCache(), large.PebbleCache())
	}
}

func TestDetectPrefersTheFlag(t *testing.T) {
	if b := Detect(300 * MiB); b.Bytes != 300*MiB || b.Source != FromFlag {
		t.Errorf("Detect(300MiB) = %v", b)
	}
	// Without a flag the budget is positive and from a known source.
	b := Detect(0)
	if b.Bytes <= 0 || (b.Source != FromCgroup && b.Source != FromAvailable && b.Source != FromDefault) {
		t.Errorf("Detect(0) = %v", b)
	}
}

func TestRSS(t *testing.T) {
	rss, err := RSS()
	if err != nil || rss < 1*MiB {
		t.Fatalf("RSS() = %d, %v", rss, err)
	}
}

func TestSetGoLimitYieldsToGOMEMLIMIT(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	t.Setenv("GOMEMLIMIT", "")
	if limit, set := SetGoLimit(100 * MiB); !set || limit != 90*MiB || debug.SetMemoryLimit(-1) != 90*MiB {
		t.Errorf("SetGoLimit(100MiB) = %d, %v", limit, set)
	}
	t.Setenv("GOMEMLIMIT", "1GiB")
	before := debug.SetMemoryLimit(-1)
	if limit, set := SetGoLimit(100 * MiB); set || limit != before {
		t.Errorf("with GOMEMLIMIT set, SetGoLimit = %d, %v; want the limit left at %d", limit, set, before)
	}
}
