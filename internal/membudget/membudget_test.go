package membudget

import (
	"errors"
	"runtime/debug"
	"testing"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"512MiB", 512 * MiB},
		{"512M", 512 * MiB},
		{"512mb", 512 * MiB},
		{"1G", 1 << 30},
		{"1GiB", 1 << 30},
		{"1.5GiB", 3 << 29},
		{" 128 MiB ", 128 * MiB},
		{"64KiB", 64 << 10},
		{"2T", 2 << 40},
		{"256", 256 * MiB},        // a bare small number is MiB (the flag's old unit)
		{"134217728", 128 * MiB},  // a bare large number is bytes
		{"134217728B", 128 * MiB}, // so is one with B
		{"0", 0},
	} {
		got, err := ParseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1G", "12 parsecs", "1.2.3G", "1e400G"} {
		if _, err := ParseSize(bad); !errors.Is(err, ErrSize) {
			t.Errorf("ParseSize(%q): err %v, want ErrSize", bad, err)
		}
	}
}

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
