package main

import (
	"strings"
	"testing"

	"github.com/edgefaas/edgefaas/internal/core"
	"github.com/edgefaas/edgefaas/internal/nodes"
)

// TestGroupFlags: the group flags' bad combinations and addresses are
// refused with an error naming the flag; no flag is a single core.
func TestGroupFlags(t *testing.T) {
	const cookie = "3f9a1c77e2b04d5a8e61c0d9b7f24a18c5e3d6f0a9b8c7d6e5f4a3b2c1d0e9f8"
	for _, tc := range []struct {
		addr, join, want string
	}{
		{"", "10.0.0.1:4002", "--join-group 10.0.0.1:4002 needs --group-addr"},
		{"10.0.0.2", "", `--group-addr "10.0.0.2": want HOST:PORT`},
		{"10.0.0.2:0", "", `--group-addr "10.0.0.2:0": want HOST:PORT`},
		{"0.0.0.0:4002", "", "must name this host, not a wildcard"},
		{":4002", "", "must name this host, not a wildcard"},
		{"10.0.0.2:4002", "10.0.0.1", `--join-group "10.0.0.1": want HOST:PORT`},
		{"10.0.0.2:4002", "10.0.0.2:4002", "is this core's own --group-addr"},
	} {
		_, err := groupConfig(tc.addr, tc.join, cookie)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("--group-addr %q --join-group %q: %v, want %q", tc.addr, tc.join, err, tc.want)
		}
	}
	if g, err := groupConfig("", "", cookie); g != nil || err != nil {
		t.Errorf("no flags: %+v %v, want a single core", g, err)
	}
	g, err := groupConfig("10.0.0.2:4002", "10.0.0.1:4002", cookie)
	if err != nil || g.ID != "10.0.0.2:4002" || g.Join != "10.0.0.1:4002" || g.TLS == nil || g.Peer == nil {
		t.Fatalf("a member: %+v %v", g, err)
	}
}

// TestGroupJoinMode: a core group's default admits workers by the cookie
// too (any), token is kept (the group shares one node CA); a single core
// keeps what was given.
func TestGroupJoinMode(t *testing.T) {
	g := &core.GroupConfig{ID: "10.0.0.2:4002"}
	for _, tc := range []struct {
		mode  nodes.JoinMode
		group *core.GroupConfig
		want  nodes.JoinMode
		err   string
	}{
		{nodes.JoinAuto, nil, nodes.JoinAuto, ""},
		{nodes.JoinToken, nil, nodes.JoinToken, ""},
		{nodes.JoinAuto, g, nodes.JoinAny, ""},
		{"", g, nodes.JoinAny, ""},
		{nodes.JoinAny, g, nodes.JoinAny, ""},
		{nodes.JoinToken, g, nodes.JoinToken, ""},
	} {
		got, err := groupJoinMode(tc.mode, tc.group)
		if got != tc.want || (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("mode %q, group %v: %q %v; want %q %q", tc.mode, tc.group != nil, got, err, tc.want, tc.err)
		}
	}
}

// TestGroupSnapshotFlag: --group-snapshot-entries sets a member's
// snapshot spacing; it needs a group and refuses a spacing so small that
// every few writes would checkpoint the whole store.
func TestGroupSnapshotFlag(t *testing.T) {
	if err := groupSnapshots(nil, 64, true); err == nil || !strings.Contains(err.Error(), "needs --group-addr") {
		t.Errorf("a single core given the flag: %v", err)
	}
	if err := groupSnapshots(nil, 8192, false); err != nil {
		t.Errorf("a single core, the default: %v", err)
	}
	g := &core.GroupConfig{ID: "10.0.0.2:4002"}
	if err := groupSnapshots(g, 15, true); err == nil || !strings.Contains(err.Error(), "want at least 16") {
		t.Errorf("15 entries: %v", err)
	}
	if err := groupSnapshots(g, 64, true); err != nil || g.SnapshotEntries != 64 {
		t.Errorf("64 entries: %v, set %d", err, g.SnapshotEntries)
	}
}
