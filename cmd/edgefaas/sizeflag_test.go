package main

import "testing"

// TestSizeValue: a function's --memory takes the node flags' grammar and
// refuses what is not a whole number of MiB.
func TestSizeValue(t *testing.T) {
	for in, want := range map[string]int64{"64": 64, "64MiB": 64, "1G": 1024, "1.5GiB": 1536, "0": 0, "2097152KiB": 2048} {
		v := sizeValue{wholeMiB: true}
		if err := v.Set(in); err != nil || v.mib() != want {
			t.Errorf("--memory %s = %d MiB, %v; want %d", in, v.mib(), err, want)
		}
	}
	for _, in := range []string{"1.5", "100KiB", "1000000B", "-1", "64 parsecs", ""} {
		v := sizeValue{wholeMiB: true}
		if err := v.Set(in); err == nil {
			t.Errorf("--memory %q accepted: %d bytes", in, v.bytes)
		}
	}
	node := sizeValue{}
	if err := node.Set("1.5"); err != nil || node.bytes != 3<<19 {
		t.Errorf("node --memory 1.5 = %d bytes, %v", node.bytes, err)
	}
}
