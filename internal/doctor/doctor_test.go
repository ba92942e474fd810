package doctor

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
)

var now = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// healthy is a site with nothing to fix, read with an admin token.
func healthy() Facts {
	return Facts{
		Host: "https://core:4000", Client: "v1.2.3",
		Core: &client.CoreVersion{Version: "v1.2.3"},
		Status: &client.AdminStatus{DiskFreeBytes: 50 << 30, DiskTotalBytes: 100 << 30, QueueLength: 0,
			NodeJoinMode: "token", Time: now},
		Asked: now.Add(-10 * time.Millisecond), Answered: now.Add(10 * time.Millisecond),
		Nodes:      []client.Node{{Name: "worker@10.0.0.7", Version: "v1.2.4", OS: "linux", Arch: "arm64", LastReport: now.Add(-time.Second)}},
		Toolchains: []Toolchain{{Name: "go", Found: "go version go1.26.0 linux/amd64"}},
	}
}

// levels is "check=level" for every finding, in order.
func levels(r Report) string {
	var b []string
	for _, f := range r {
		b = append(b, f.Check+"="+string(f.Level))
	}
	return strings.Join(b, " ")
}

func TestDiagnose(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(f *Facts)
		want   string // the findings' check=level, in order
		failed bool
	}{
		{"healthy", func(*Facts) {},
			"core=ok token=ok client version=ok role=ok clock=ok disk=ok async queue=ok node joins=ok workers=ok worker worker@10.0.0.7=ok toolchain go=ok", false},
		{"no core", func(f *Facts) {
			f.Core, f.CoreErr = nil, &client.UnreachableError{URL: f.Host, Err: fmt.Errorf("connection refused")}
		}, "core=fail toolchain go=ok", true},
		{"wrong token", func(f *Facts) {
			f.Core, f.CoreErr = nil, &client.Error{Status: http.StatusUnauthorized, Detail: "Unauthorized: invalid token"}
		}, "core=ok token=fail toolchain go=ok", true},
		{"user token", func(f *Facts) {
			f.Status, f.StatusErr = nil, &client.Error{Status: http.StatusForbidden, Detail: "Forbidden"}
		}, "core=ok token=ok client version=ok role=ok workers=ok worker worker@10.0.0.7=ok toolchain go=ok", false},
		{"no worker", func(f *Facts) { f.Nodes = nil },
			"core=ok token=ok client version=ok role=ok clock=ok disk=ok async queue=ok node joins=ok workers=fail toolchain go=ok", true},
		{"trouble to warn of", func(f *Facts) {
			f.Client = "v1.3.0"
			f.Status.Time = now.Add(-time.Minute)
			f.Status.DiskFreeBytes = 1 << 30
			f.Status.QueueLength, f.Status.QueueOldestAgeSeconds = 12, 3600
			f.Status.NodeJoinMode = "any"
			f.Nodes = append(f.Nodes, client.Node{Name: "worker@10.0.0.8", Version: "v1.1.0"}, client.Node{Name: "worker@10.0.0.9", Version: "v1.2.3", LastReport: now.Add(-time.Hour)},
				client.Node{Name: "worker@10.0.0.10", Version: "v1.2.3", LastReport: now, ClockSkewMS: -90000})
			f.Toolchains = append(f.Toolchains, Toolchain{Name: "c", Found: "clang 14", Problem: "no wasm-ld", Install: "apt-get install lld"}, Toolchain{Name: "rust"})
		}, "core=ok token=ok client version=warn role=ok clock=warn disk=warn async queue=warn node joins=warn workers=ok worker worker@10.0.0.7=ok worker worker@10.0.0.8=warn worker worker@10.0.0.9=warn worker worker@10.0.0.10=warn toolchain go=ok toolchain c=warn toolchain rust=skip", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := healthy()
			c.change(&f)
			r := Diagnose(f, now)
			if got := levels(r); got != c.want {
				t.Errorf("findings\n got %s\nwant %s", got, c.want)
			}
			if r.Failed() != c.failed {
				t.Errorf("failed %v, want %v", r.Failed(), c.failed)
			}
			for _, f := range r {
				if (f.Level == Fail || f.Level == Warn) && f.Fix == "" {
					t.Errorf("%s is %s without a fix: %s", f.Check, f.Level, f.Detail)
				}
			}
		})
	}
}
