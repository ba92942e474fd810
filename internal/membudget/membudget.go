// Package membudget tells a node how much memory it may use and how that
// memory is shared between its parts, so that a node on a small edge
// machine (a Raspberry Pi, a systemd unit with MemoryMax=, a container
// with a limit) stays inside it instead of being OOM-killed.
//
// The budget comes from, in order: the operator (--memory), the memory
// cgroup the process runs in (v2 memory.max or v1 memory.limit_in_bytes,
// read with github.com/KimMachineGun/automemlimit), else a share of the
// machine's MemAvailable (read with github.com/prometheus/procfs). Split
// divides it between the node's machinery (Go runtime, ergo, HTTP), its
// store (pebble), the core's upload-validation child and the guests.
package membudget

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"unicode"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/prometheus/procfs"
)

// MiB is 2^20 bytes.
const MiB = 1 << 20

// Source says where a budget came from.
type Source string

// Budget sources, in order of precedence.
const (
	FromFlag      Source = "flag"      // --memory
	FromCgroup    Source = "cgroup"    // the process's memory cgroup limit
	FromAvailable Source = "available" // AvailableShare of MemAvailable at start
	FromDefault   Source = "default"   // nothing readable: DefaultBudget
)

// AvailableShare is the part of MemAvailable a node takes when nothing
// limits it: the rest is left to the OS's page cache and other programs.
const AvailableShare = 0.75

// DefaultBudget applies where neither a cgroup nor /proc/meminfo can be
// read (not Linux): the size of a Raspberry Pi 3B+'s free memory.
const DefaultBudget = 512 * MiB

// Budget is the memory a node may use, bytes, and where that figure came from.
type Budget struct {
	Bytes  int64
	Source Source
}

func (b Budget) String() string {
	return fmt.Sprintf("%s (%s)", FormatSize(b.Bytes), b.Source)
}

// Detect returns the node's budget: flag if positive, else the cgroup
// limit (when it is below the machine's memory), else AvailableShare of
// MemAvailable.
func Detect(flag int64) Budget {
	if flag > 0 {
		return Budget{Bytes: flag, Source: FromFlag}
	}
	total, avail := meminfo()
	if lim, err := memlimit.FromCgroup(); err == nil && lim > 0 && lim < math.MaxInt64 {
		if total <= 0 || int64(lim) < total {
			return Budget{Bytes: int64(lim), Source: FromCgroup}
		}
	}
	if avail > 0 {
		return Budget{Bytes: int64(float64(avail) * AvailableShare), Source: FromAvailable}
	}
	return Budget{Bytes: DefaultBudget, Source: FromDefault}
}

// meminfo reads MemTotal and MemAvailable, bytes (0 when unknown).
func meminfo() (total, avail int64) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0, 0
	}
	mi, err := fs.Meminfo()
	if err != nil {
		return 0, 0
	}
	if mi.MemTotalBytes != nil {
		total = int64(*mi.MemTotalBytes)
	}
	if mi.MemAvailableBytes != nil {
		avail = int64(*mi.MemAvailableBytes)
	}
	return total, avail
}

// RSS is this process's resident set size, bytes, from /proc/self/stat.
func RSS() (int64, error) {
	p, err := procfs.Self()
	if err != nil {
		return 0, fmt.Errorf("read own process: %w", err)
	}
	st, err := p.Stat()
	if err != nil {
		return 0, fmt.Errorf("read own process stat: %w", err)
	}
	return int64(st.ResidentMemory()), nil
}

// GoLimitShare is the Go runtime's soft memory limit as a share of what
// the runtime may hold (Split.GoHeap). The 10% margin is for what the
// runtime does not count and the kernel does: thread stacks outside the
// runtime, pages freed but not yet returned by the scavenger, dirty pages
// of the node's writes. The limit is soft: it makes the GC work harder
// near the budget, it cannot hold live data below it; the engine's
// admission by memory does that.
const GoLimitShare = 0.90

// SetGoLimit sets the Go runtime's soft memory limit (debug.SetMemoryLimit)
// to GoLimitShare of heapBytes (Split.GoHeap), unless the operator set
// GOMEMLIMIT, which then wins. It returns the limit in force and whether
// it set it.
func SetGoLimit(heapBytes int64) (limit int64, set bool) {
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		return debug.SetMemoryLimit(-1), false
	}
	limit = int64(float64(heapBytes) * GoLimitShare)
	if limit <= 0 {
		return debug.SetMemoryLimit(-1), false
	}
	debug.SetMemoryLimit(limit)
	return limit, true
}

// Role is what a node runs: the split depends on it.
type Role int

// Roles.
const (
	Core      Role            = 1 << iota // API, store, upload validation
	Worker                                // guests
	SingleBox = Core | Worker             // `core --with-worker`, `dev`
)

// Split is how a budget is shared, bytes. Machinery + Store + Validator +
// Guests == the budget (Guests is what is left, never below zero).
type Split struct {
	Budget    int64 // the whole budget split
	Machinery int64 // Go runtime, ergo, HTTP server, buffers
	Store     int64 // pebble: block cache + memtables (core)
	Validator int64 // the upload-validation child, all at once (core)
	// ValidatorConcurrency is how many validation children may run at
	// once, each admitted against Validator.
	ValidatorConcurrency int
	Guests               int64 // wasm.Config.MemoryBudget (worker)
}

// Shares of the budget, with bounds so a tiny budget still runs and a
// large one does not hoard.
const (
	machineryMin = 24 * MiB
	machineryMax = 256 * MiB
	storeMin     = 4 * MiB
	storeMax     = 64 * MiB // a function store's hot set is small: records and a few code blobs
	// ValidatorChild is what one validation child may take: the
	// interpreter's compilation of a few-MiB Go module plus the Go runtime.
	ValidatorChild = 48 * MiB
	validatorMax   = 4
)

// Split divides b for a node running role.
func (b Budget) Split(role Role) Split {
	total := b.Bytes
	s := Split{Budget: total, Machinery: clamp(total/8, machineryMin, machineryMax)}
	if role&Core != 0 {
		s.Store = clamp(total/16, storeMin, storeMax)
		left := total - s.Machinery - s.Store
		if role&Worker != 0 {
			left /= 2 // guests get at least half of what is left
		}
		s.ValidatorConcurrency = int(clamp(left/ValidatorChild, 1, validatorMax))
		s.Validator = int64(s.ValidatorConcurrency) * ValidatorChild
	}
	if role&Worker != 0 {
		s.Guests = max(total-s.Machinery-s.Store-s.Validator, 0)
	}
	return s
}

// Process is what this process may own: the whole budget but the
// validation child's share (another process in the same cgroup). Shares
// are floors for their parts, not ceilings of the process: a core alone
// may use for uploads and requests what no guest takes.
func (s Split) Process() int64 { return max(s.Budget-s.Validator, s.Machinery) }

// Code is the part of Guests compiled machine code may hold (the engine's
// CodeBudget): half of it; the rest is for the guests' linear memory.
func (s Split) Code() int64 { return s.Guests / 2 }

// GoHeap is what the Go runtime may hold: what the process may own less
// the compiled code's part, which the runtime does not count. wazero maps a
// module's machine code outside the Go heap, as the module is compiled and
// for as long as it is loaded (13 MB for a Go hello), so a Go limit of the
// whole process let the heap of a compile grow into the memory its own code
// was taking: a worker in 64 MiB compiling a Go hello held 46 MiB of heap
// beside 13 MiB of code, and the kernel killed it when the page cache of
// its compile-cache write needed the rest.
func (s Split) GoHeap() int64 { return max(s.Process()-s.Code(), s.Machinery) }

// PebbleCache is the store's block cache: half its share.
func (s Split) PebbleCache() int64 { return s.Store / 2 }

// PebbleMemTable is one memtable: a quarter of the store's share (two may
// be in memory at once, one being flushed), 1–8 MiB.
func (s Split) PebbleMemTable() int64 { return clamp(s.Store/4, 1*MiB, 8*MiB) }

func clamp(v, lo, hi int64) int64 { return min(max(v, lo), hi) }

// ErrSize is returned by ParseSize for a text that is not a size.
var ErrSize = errors.New("not a memory size")

// ParseSize reads a memory size, the one grammar of every --memory flag:
// a number, a decimal fraction allowed, and a unit B, K, M, G or T, each
// optionally followed by i and/or B in either case ("512MiB", "512M",
// "512mb", "1.5GiB", "64KiB", "134217728B"). A bare number is MiB, whatever
// its size ("256" is 256 MiB, "1048576" is 1 TiB): the unit --memory had
// before it took units, and the one `fn create --memory` always had. K, M,
// G, T are powers of 1024 like Ki, Mi, Gi, Ti, with or without i or B:
// nobody sizes memory in powers of ten.
func ParseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return !unicode.IsDigit(r) && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.TrimSpace(t[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%w: %q (write e.g. 512MiB or 1G)", ErrSize, s)
	}
	var mult float64
	switch strings.ToLower(strings.TrimSuffix(strings.TrimSuffix(unit, "B"), "b")) {
	case "":
		if unit == "" {
			mult = MiB // a bare number: MiB
		} else {
			mult = 1 // B
		}
	case "k", "ki":
		mult = 1 << 10
	case "m", "mi":
		mult = MiB
	case "g", "gi":
		mult = 1 << 30
	case "t", "ti":
		mult = 1 << 40
	default:
		return 0, fmt.Errorf("%w: %q: unknown unit %q (B, KiB, MiB, GiB, TiB)", ErrSize, s, unit)
	}
	b := v * mult
	if b >= math.MaxInt64 {
		return 0, fmt.Errorf("%w: %q is too large", ErrSize, s)
	}
	return int64(b), nil
}

// FormatSize writes bytes as ParseSize reads them: whole GiB or MiB when
// exact, else GiB or MiB with one decimal, bytes below 1 MiB.
func FormatSize(b int64) string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return strconv.FormatInt(b>>30, 10) + "GiB"
	case b >= 1<<30:
		return strconv.FormatFloat(float64(b)/(1<<30), 'f', 1, 64) + "GiB"
	case b >= MiB && b%MiB == 0:
		return strconv.FormatInt(b>>20, 10) + "MiB"
	case b >= MiB:
		return strconv.FormatFloat(float64(b)/MiB, 'f', 1, 64) + "MiB"
	}
	return strconv.FormatInt(b, 10) + "B"
}
