package version

import (
	"errors"
	"strings"
	"testing"
)

func TestCompatible(t *testing.T) {
	for _, c := range []struct {
		core, worker string
		ok           bool
	}{
		{"v1.2.3", "v1.2.3", true},
		{"v1.2.3", "v1.2.0", true},
		{"v1.2.3", "1.2.9", true},
		{"v1.2.3-rc.1", "v1.2.0", true},
		{"v1.2.3", "v1.3.0", false},
		{"v1.2.3", "v2.2.3", false},
		{"v0.4.0", "v0.5.0", false},
		{Dev, Dev, true},
		{Dev, "v1.2.3", false},
		{"v1.2.3", Dev, false},
		{"v0.0.0-20261206161254-bdddbf6abcde", "v0.0.0-20261206161254-bdddbf6abcde", true},
		{"v0.0.0-20261206161254-bdddbf6abcde", "v0.0.0-20261206170000-0123456789ab", false},
		{"v1.2.4-0.20261206161254-bdddbf6abcde", "v1.2.3", false},
		{"v1.2.3+dirty", "v1.2.3", false},
		{"v1.2.3", "", false},
	} {
		err := Compatible(c.core, c.worker)
		if (err == nil) != c.ok {
			t.Errorf("Compatible(%q, %q) = %v, want ok=%v", c.core, c.worker, err, c.ok)
			continue
		}
		if err != nil {
			if !errors.Is(err, ErrSkew) {
				t.Errorf("Compatible(%q, %q) = %v, not ErrSkew", c.core, c.worker, err)
			}
			if !strings.Contains(err.Error(), "core "+c.core) || !strings.Contains(err.Error(), "worker "+c.worker) {
				t.Errorf("Compatible(%q, %q) = %q: does not name both versions", c.core, c.worker, err)
			}
		}
	}
}

func TestGetFallsBack(t *testing.T) {
	old := version
	t.Cleanup(func() { version = old })
	version = "v9.8.7"
	if got := Get().Version; got != "v9.8.7" {
		t.Errorf("stamped: Get().Version = %q", got)
	}
	version = ""
	i := Get()
	if i.Version == "" || i.GoVersion == "" || i.OS == "" || i.Arch == "" {
		t.Errorf("unstamped: Get() = %+v: a field is empty", i)
	}
}
