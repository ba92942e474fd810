package wasm

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

// TestGuestThreadPriority checks both ways of running a long guest at a
// lower OS priority: after niceAfter its thread runs at the lowered nice,
// and the caller's thread is back at its own priority afterwards, whether
// the process may restore a thread's nice (root here) or not (then the
// guest keeps the node's priority: no thread is ever ended, which would
// fire the Pdeathsig of the processes it started).
func TestGuestThreadPriority(t *testing.T) {
	restoreOnce.Do(probeRestore)
	saved := canRestore
	defer func() { canRestore = saved }()
	nice := func() int {
		n, err := threadNice(syscall.Gettid())
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, restore := range []bool{true, false} {
		if restore && !saved {
			t.Log("this process cannot restore a thread's nice: only the fallback is checked")
			continue
		}
		canRestore = restore
		runtime.LockOSThread()
		before := nice()
		var early, late int
		p := &threadPrio{}
		guestThread(p, func() {
			// The clock is moved, not waited for: a loaded machine
			// cannot make the early check late.
			p.start = time.Now().Add(time.Hour)
			p.maybeLower() // too early: nothing changes
			early = nice()
			p.start = time.Now().Add(-niceAfter)
			p.maybeLower()
			late = nice()
		})
		after := nice()
		runtime.UnlockOSThread()
		if early != before {
			t.Errorf("restore=%v: a short guest ran at nice %d, want %d", restore, early, before)
		}
		want := lowered(before)
		if !restore {
			want = before // without the right to restore it, never lowered
		}
		if late != want {
			t.Errorf("restore=%v: a long guest ran at nice %d, want %d", restore, late, want)
		}
		if after != before {
			t.Errorf("restore=%v: the caller's thread is at nice %d after the guest, was %d", restore, after, before)
		}
	}
}
