package wasm

import (
	"runtime"
	"sync"
	"syscall"
	"time"
)

// A guest that computes for long runs at a lower OS priority than the
// node's own threads and than short guests, so that the kernel gives the
// CPU to the node's HTTP, actors and network (and to a neighbour's quick
// call) the moment they wake, whatever number of guests compute
// (docs/architecture.md, "Guest scheduling"). At its first termination
// check after niceAfter of running, the guest's goroutine is locked to its
// thread and the thread's nice raised by guestNice; when the call ends the
// nice is restored and the thread unlocked.
const (
	guestNice = 10
	niceAfter = time.Millisecond
)

var (
	restoreOnce sync.Once
	canRestore  bool // the process may lower a thread's nice back
)

// threadPrio is one call's thread priority state; only the call's own
// goroutine touches it.
type threadPrio struct {
	start     time.Time
	locked    bool
	tid, base int
}

// maybeLower lowers the priority once the call has run niceAfter.
func (p *threadPrio) maybeLower() {
	if p == nil || p.locked || time.Since(p.start) < niceAfter {
		return
	}
	runtime.LockOSThread()
	p.locked, p.tid = true, syscall.Gettid()
	base, err := threadNice(p.tid)
	if err != nil {
		p.base = -100 // unknown: never lowered
		return
	}
	p.base = base
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, p.tid, lowered(base))
}

// restore puts the thread back; false means it could not, and the caller
// must end its goroutine still locked (Go then terminates the thread).
func (p *threadPrio) restore() bool {
	if !p.locked {
		return true
	}
	if p.base != -100 && syscall.Setpriority(syscall.PRIO_PROCESS, p.tid, p.base) != nil {
		return false
	}
	p.locked = false
	runtime.UnlockOSThread()
	return true
}

// guestThread runs f, a guest's execution, with p ready to lower its
// thread's priority. Raising a thread's nice is always allowed; lowering it
// back needs CAP_SYS_NICE or RLIMIT_NICE, so without them f runs on a new
// goroutine, whose thread ends with it if it was lowered: a node goroutine
// never runs on a low-priority thread.
func guestThread(p *threadPrio, f func()) {
	restoreOnce.Do(probeRestore)
	p.start = time.Now()
	if canRestore {
		f()
		p.restore()
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
		p.restore() // if false, this goroutine exits locked
	}()
	<-done
}

// probeRestore finds out, on a throwaway thread, whether nice can be
// lowered back.
func probeRestore() {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the probe's thread ends here
		tid := syscall.Gettid()
		base, err := threadNice(tid)
		canRestore = err == nil && base < 19 &&
			syscall.Setpriority(syscall.PRIO_PROCESS, tid, lowered(base)) == nil &&
			syscall.Setpriority(syscall.PRIO_PROCESS, tid, base) == nil
	}()
	<-done
}

// threadNice is a thread's nice value (the raw syscall reports 20 - nice).
func threadNice(tid int) (int, error) {
	p, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
	return 20 - p, err
}

func lowered(nice int) int { return min(nice+guestNice, 19) }
