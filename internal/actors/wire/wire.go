// Package wire defines the messages core and worker nodes exchange over
// ergo's network, and registers them with ergo's encoder on both sides.
//
// Rules from ergo's pitfalls: every field is exported; bytes and long text
// travel as []byte (a string over 65,535 bytes fails to encode); integers
// are int (int64 arrives as int); lists of strings are joined into []byte.
package wire

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/ergo-services/ergo/etf"
)

// Registered names of the worker processes a core addresses: part of the
// contract between the nodes, so neither side imports the other's actors.
const (
	// RunnerName is the worker's runner, the destination of every Invoke.
	RunnerName = "runner"
	// CacheName is the worker's code cache, the destination of Cache and Evict.
	CacheName = "cache"
	// ReporterName is the worker's reporter, the destination of Join,
	// NodeCert and Refused.
	ReporterName = "reporter"
)

// Status of an invocation's answer.
const (
	StatusOK            = 0 // Output holds the function's JSON
	StatusFunctionError = 1 // the function reported Error (HTTP 422)
	StatusNoCode        = 2 // the worker lacks the code: resend with Code
	StatusBusy          = 3 // the worker's queue is full; nothing ran
	StatusError         = 4 // platform error (trap, limit...) in Error
	StatusTimeout       = 5 // the function ran past its timeout
)

// Invoke asks a worker's runner to run one function version.
type Invoke struct {
	ID           int     // the core's key for the answer
	ReplyTo      etf.Pid // the invoker process that waits for Result
	ReplyName    string  // its registered name: answers go there by name, so a restarted invoker still routes them
	Function     string  // "module/name"
	Hash         string  // sha256 of the code
	Args         []byte  // JSON
	MemoryPages  int     // 0: the worker's default
	TimeoutMS    int     // 0: the worker's default
	AllowedHosts []byte  // newline-separated outbound grants
	Code         []byte  // set when resending after StatusNoCode
	Owner        string  // the function's owner: warm instances are never shared between owners
}

// Result answers an Invoke.
type Result struct {
	ID     int
	Status int
	Output []byte
	Error  []byte
	Node   string // the worker that answered
	// Logs are the function's log lines (newline-joined), already bounded
	// by its log limit and cut with a marker line by the engine.
	Logs []byte
	// DurationUS is the time spent in the guest, in microseconds.
	DurationUS int
}

// Cancel tells a worker's runner that the caller of invocation ID (sent by
// core node Core) went away: the call's context is cancelled, which stops
// the guest and frees its slot.
type Cancel struct {
	ID   int
	Core string
}

// Cache asks a worker's cache to compile and keep a function version.
type Cache struct {
	ID          int
	ReplyTo     etf.Pid // zero Pid: no acknowledgement wanted
	ReplyName   string  // its registered name: the acknowledgement goes there by name, which carries its sender
	Hash        string
	Code        []byte
	MemoryPages int
}

// Cached acknowledges a Cache.
type Cached struct {
	ID    int
	Node  string
	Hash  string
	Error []byte // empty: compiled and cached
}

// Evict tells a worker's cache to drop a function version.
type Evict struct {
	Hash string
}

// Report is a worker's periodic state, sent to every core it knows.
type Report struct {
	Node        string
	Arch, OS    string
	Tags        []byte // newline-separated
	TotalMemory int    // bytes the worker offers to functions (its guests' share of the budget)
	FreeMemory  int    // of which free now: not reserved by guests, and not above the budget in RSS
	Running     int    // invocations running
	Queued      int    // invocations waiting for a slot
	MaxRunning  int    // the worker's concurrency limit
	Cached      []byte // newline-separated hashes of compiled versions
	Invocations int    // invocations started since the worker started
	Host        string // the worker's node address, so a core can dial back
	Port        int
	// The node's memory, bytes (zero from a worker that predates them):
	// its whole budget (--memory, the cgroup limit or a share of
	// MemAvailable), its resident set now, and what its guests and
	// compiled code hold of the guests' share.
	MemoryBudget, MemoryInUse, MemoryReserved int
	// Version is the edgefaas version the worker runs (internal/version):
	// a core refuses a worker whose version it does not support
	// (version.Compatible) and answers it with Refused.
	Version string
	// Clock is the worker's wall clock when it sent the report, Unix
	// milliseconds (0 from a worker that predates it): the core tells the
	// skew between the clocks (records' times, tokens' expiry).
	Clock int64
}

// Refused is sent by a core to a worker's reporter whose report it will
// not take (a version it does not support): Reason names both versions.
// The reporter stops reporting to that core.
type Refused struct {
	Core   string
	Reason []byte
}

// Join is sent by a core to a worker's reporter when an operator attaches
// the worker to that core (`edgefaas node connect`): the reporter adds the
// core to the cores it reports to.
type Join struct {
	Node string
}

// NodeCert is sent by a core to a token-joined worker's reporter when an
// admin rotates its certificate (`edgefaas node rotate`): the new
// certificate and key (PEM), over the live mutually authenticated link.
// The worker keeps them and presents them from its next handshake.
type NodeCert struct {
	Cert []byte
	Key  []byte
}

var once sync.Once

// Register registers every message type with ergo's encoder. Call it before
// starting a node; it is idempotent.
func Register() error {
	var err error
	once.Do(func() {
		for _, t := range []any{Invoke{}, Result{}, Cache{}, Cached{}, Evict{}, Report{}, Join{}, Cancel{}, NodeCert{}, Refused{}} {
			if _, e := etf.RegisterType(t, etf.RegisterTypeOptions{Strict: true}); e != nil {
				err = fmt.Errorf("register %T: %w", t, e)
				return
			}
		}
	})
	return err
}

// JoinList encodes a list of strings for a message.
func JoinList(items []string) []byte {
	return bytes.Join(toBytes(items), []byte("\n"))
}

// SplitList decodes JoinList.
func SplitList(b []byte) []string {
	if len(b) == 0 {
		return nil
	}
	parts := bytes.Split(b, []byte("\n"))
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = string(p)
	}
	return out
}

func toBytes(items []string) [][]byte {
	out := make([][]byte, len(items))
	for i, s := range items {
		out[i] = []byte(s)
	}
	return out
}
