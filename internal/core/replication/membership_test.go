package replication

import (
	"errors"
	"fmt"
	"testing"

	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// TestJoinThroughAFollower: a new member asks a follower to add it; the
// follower passes the request to the leader, the new member receives the
// state, takes writes through Writes like any member, and every member
// lists the four with their status.
func TestJoinThroughAFollower(t *testing.T) {
	members, ca := startTLSGroupCA(t, 3)
	fo := follower(t, members)
	if _, err := propose(t, fo, CreateModule{Name: "m", Owner: "alice", Stamp: stamp(t, fo.store)}); err != nil {
		t.Fatal(err)
	}
	nm := startTLSMember(t, ca, "core@10.0.0.9")
	nm.tr.ServeForwarded(nm.m)
	t.Cleanup(nm.stop)
	if err := nm.tr.Join(fo.tr.LocalAddr(), nm.id, nm.tr.LocalAddr()); err != nil {
		t.Fatalf("join through the follower: %v", err)
	}
	wait.For(t, limit, "the new member to receive the module", func() bool {
		_, err := nm.store.GetModule("m")
		return err == nil
	})
	token, err := nm.m.Writes().CreateSubject("bob", false)
	if err != nil || token == "" {
		t.Fatalf("a write through the new member: %q %v", token, err)
	}
	for _, tm := range append(members, nm) {
		tm := tm
		wait.ForState(t, limit, fmt.Sprintf("%s to authenticate bob's token", tm.id), func() (bool, string) {
			sub, err := tm.store.Authenticate(token)
			return err == nil && sub.Name == "bob", fmt.Sprint(err)
		})
	}
	ms, err := fo.m.Members()
	if err != nil {
		t.Fatal(err)
	}
	leaders, selves := 0, 0
	for _, m := range ms {
		if m.Error != "" || m.Term == 0 || m.Applied == 0 {
			t.Errorf("member %+v", m)
		}
		if m.Role == "leader" {
			leaders++
		}
		if m.Self {
			selves++
			if m.ID != fo.id {
				t.Errorf("self is %s, want %s", m.ID, fo.id)
			}
		}
	}
	if len(ms) != 4 || leaders != 1 || selves != 1 {
		t.Fatalf("members: %+v", ms)
	}
}

// TestWritesWithoutMajorityAreUnavailable: with no majority, a write
// through Writes is an *Unavailable naming the leader believed in, if
// any, and saying it was not applied, never a storage error.
func TestWritesWithoutMajorityAreUnavailable(t *testing.T) {
	members, ca := startTLSGroupCA(t, 3)
	fo := follower(t, members)
	for _, tm := range members {
		if tm != fo {
			tm.stop()
		}
	}
	var u *Unavailable
	_, err := fo.m.Writes().CreateModule("x", "alice")
	if !errors.As(err, &u) {
		t.Fatalf("a write without a majority: %v, want *Unavailable", err)
	}
	if u.OutcomeUnknown() {
		t.Fatalf("a write refused for want of a leader has an unknown outcome: %v", err)
	}
	if _, err := fo.store.GetModule("x"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the refused module is stored: %v", err)
	}
	// A member that asks a group that cannot add it is told so.
	nm := startTLSMember(t, ca, "core@10.0.0.9")
	t.Cleanup(nm.stop)
	if err := nm.tr.Join(fo.tr.LocalAddr(), nm.id, nm.tr.LocalAddr()); err == nil {
		t.Fatal("a group without a majority added a member")
	}
}
