package wasm

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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
		var lateSlice time.Duration
		p := &threadPrio{}
		guestThread(p, func() {
			// The clock is moved, not waited for: a loaded machine
			// cannot make the early check late.
			p.start = time.Now().Add(time.Hour)
			p.maybeLower(time.Now()) // too early: nothing changes
			early = nice()
			p.start = time.Now().Add(-niceAfter)
			p.maybeLower(time.Now())
			late = nice()
			lateSlice = threadSlice(t)
		})
		afterSlice := threadSlice(t)
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
		if restore && lateSlice >= 0 && kernelSlices(t) {
			if lateSlice != guestSlice {
				t.Errorf("a long guest's thread has a slice of %s, want %s", lateSlice, guestSlice)
			}
			if afterSlice == guestSlice {
				t.Errorf("the caller's thread kept the guest's slice of %s", afterSlice)
			}
		}
	}
}

// threadSlice is the calling thread's scheduler slice, from
// /proc/thread-self/sched (a kernel with scheduler debugging), or -1.
func threadSlice(t *testing.T) time.Duration {
	b, err := os.ReadFile("/proc/thread-self/sched")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "se.slice"); ok {
			ns, err := strconv.ParseInt(strings.TrimSpace(strings.TrimLeft(v, " :")), 10, 64)
			if err != nil {
				t.Fatalf("se.slice %q: %v", line, err)
			}
			return time.Duration(ns)
		}
	}
	return -1
}

// kernelSlices reports whether the kernel takes a custom slice for a
// normal thread (Linux 6.12 and later), tried on a thread of its own.
func kernelSlices(t *testing.T) bool {
	ok := make(chan bool)
	go func() {
		runtime.LockOSThread() // the thread ends with the goroutine
		ok <- unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL, Runtime: uint64(guestSlice)}, 0) == nil &&
			threadSlice(t) == guestSlice
	}()
	if !<-ok {
		t.Log("this kernel takes no custom slice: only the nice is checked")
		return false
	}
	return true
}
