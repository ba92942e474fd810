package wasm

import (
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// A guest that computes for long runs at a lower OS priority than the
// node's own threads and than short guests, so that the kernel gives the
// CPU to the node's HTTP, actors and network (and to a neighbour's quick
// call) the moment they wake, whatever number of guests compute
// (docs/architecture.md, "Guest scheduling"). At its first termination
// check after niceAfter of running, the guest's goroutine is locked to its
// thread and the thread's nice raised by guestNice, with a scheduler slice
// of guestSlice; when the call ends both are restored and the thread
// unlocked.
//
// The slice matters as much as the nice. Linux's EEVDF scheduler (6.6 and
// later) lets a running thread finish its slice before a woken one of
// higher priority runs, unless the woken one asks for a shorter slice
// (PREEMPT_SHORT); with the timer at HZ 250 a node thread woken beside a
// guest waited up to 4 ms. A guest thread asking for the longest slice the
// kernel allows (a custom slice, sched_attr's sched_runtime, Linux 6.12)
// is preempted at once by every thread of the default slice: a C hello's
// p99 beside two spinners on the 2-core test machine went from 2.2–3.5 ms
// to 1.8–3.5 ms (×1.4–3.0 its calm p99, against ×1.7–4.2). Its share of
// the CPU is the nice's: the slice sets when it yields, not how much it
// gets. Older kernels ignore the slice, or refuse it and the nice alone
// is set.
const (
	guestNice  = 10
	guestSlice = 100 * time.Millisecond
	niceAfter  = time.Millisecond
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
	off       bool // this process cannot restore a nice: never lowered
	tid, base int
}

// maybeLower lowers the priority once the call has run niceAfter by now.
func (p *threadPrio) maybeLower(now time.Time) {
	if p == nil || p.off || p.locked || now.Sub(p.start) < niceAfter {
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
	setThreadPriority(p.tid, lowered(base), guestSlice)
}

// setThreadPriority gives thread tid nice and a custom scheduler slice
// (0: the kernel's default), or only the nice where the kernel refuses
// sched_setattr or custom slices.
func setThreadPriority(tid, nice int, slice time.Duration) error {
	attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL, Nice: int32(nice), Runtime: uint64(slice)}
	if unix.SchedSetAttr(tid, &attr, 0) == nil {
		return nil
	}
	return syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice)
}

// restore puts the thread back; false means it could not, and the caller
// must end its goroutine still locked (Go then terminates the thread).
func (p *threadPrio) restore() bool {
	if !p.locked {
		return true
	}
	if p.base != -100 && setThreadPriority(p.tid, p.base, 0) != nil {
		return false
	}
	p.locked = false
	runtime.UnlockOSThread()
	return true
}

// guestThread runs f, a guest's execution, with p ready to lower its
// thread's priority. Raising a thread's nice is always allowed; lowering it
// back needs CAP_SYS_NICE or RLIMIT_NICE. Without them guests keep the
// node's priority (the CPU slots and the spare P still protect the node):
// the other way out, ending the lowered thread with its goroutine, would
// also fire the parent-death signal (Pdeathsig) of every child process
// that thread had started, such as an upload validator.
func guestThread(p *threadPrio, f func()) {
	restoreOnce.Do(probeRestore)
	p.start = time.Now()
	p.off = !canRestore
	f()
	p.restore()
}

// probeRestore finds out whether this process may lower a thread's nice
// back after raising it, without trying (a thread lowered for good must
// not run node goroutines, and ending it would fire its children's
// Pdeathsig): CAP_SYS_NICE in the effective set, or an RLIMIT_NICE that
// allows the nice the process runs at.
func probeRestore() {
	if st, err := procfs.Self(); err == nil {
		if s, err := st.NewStatus(); err == nil && s.CapEff&(1<<capSysNice) != 0 {
			canRestore = true
			return
		}
	}
	base, err := threadNice(syscall.Gettid())
	var lim syscall.Rlimit
	if err == nil && syscall.Getrlimit(rlimitNice, &lim) == nil && lim.Cur < 1<<20 {
		canRestore = 20-int(lim.Cur) <= base // the lowest nice the limit allows
	}
}

// capSysNice and rlimitNice are Linux's numbers (linux/capability.h,
// asm-generic/resource.h); the syscall package names neither.
const (
	capSysNice = 23
	rlimitNice = 13
)

// threadNice is a thread's nice value (the raw syscall reports 20 - nice).
func threadNice(tid int) (int, error) {
	p, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid)
	return 20 - p, err
}

func lowered(nice int) int { return min(nice+guestNice, 19) }
