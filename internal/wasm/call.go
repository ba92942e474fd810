package wasm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
)

// callState is everything one invocation owns while the guest runs. Host
// functions reach it through the call's context, so a pooled instance can
// serve many invocations one after another.
type callState struct {
	function string
	input    []byte
	limits   Limits
	hosts    []string
	outbound Outbound

	output    []byte
	hasOutput bool
	errMsg    *string

	outputChecked, outputValid bool // validOutput's cached answer

	mu       sync.Mutex // logs may be written from wazero's stdio writers
	logs     []string
	logBytes int
	logCut   bool
	partial  []byte // an unfinished stderr/stdout line

	pending []byte // extension ABI: unread HTTP response body
	effects bool   // an outbound request was made: the call must not be rerun

	memPages uint32 // the guest's memory when it failed, to tell exhaustion from other traps

	cpu  *cpuHold    // the call's CPU slot (slots.go)
	prio *threadPrio // its thread's OS priority (nice_linux.go)

	done <-chan struct{} // closed when the call ends: its sleeps end too (sleepFor)
}

// validOutput reports whether the output is empty or valid JSON (checked
// once per call).
func (st *callState) validOutput() bool {
	if !st.outputChecked {
		out := bytes.TrimSpace(st.output)
		st.outputChecked, st.outputValid = true, len(out) == 0 || json.Valid(out)
	}
	return st.outputValid
}

type callKey struct{}

func withCall(ctx context.Context, st *callState) context.Context {
	return context.WithValue(ctx, callKey{}, st)
}

func callFrom(ctx context.Context) *callState {
	st, _ := ctx.Value(callKey{}).(*callState)
	return st
}

const logTruncated = "[edgefaas: log truncated]"

// LogLineCost is what one kept log line costs against MaxLogBytes beyond
// its own bytes: about its string header in the call's slice. Without it
// empty lines were free, and a guest logging them in a loop grew the host's
// heap without bound; with it the byte bound is a bound on lines too
// (MaxLogBytes/LogLineCost at most) and on the memory they hold.
const LogLineCost = 16

// log records one line, within the invocation's log budget.
func (st *callState) log(line string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.addLine(line)
}

func (st *callState) addLine(line string) {
	if st.logCut {
		return
	}
	cost := len(line) + LogLineCost
	if st.logBytes+cost > st.limits.MaxLogBytes {
		st.logCut = true
		st.logs = append(st.logs, logTruncated)
		return
	}
	st.logBytes += cost
	st.logs = append(st.logs, line)
}

// Write makes the call state a line-splitting io.Writer for a guest's
// stderr (and a reactor's stdout): each line becomes a log line.
func (st *callState) Write(p []byte) (int, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	n := len(p)
	for len(p) > 0 && !st.logCut {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(st.partial)+len(p) > st.limits.MaxLogBytes {
				st.addLine(string(st.partial) + string(p))
				st.partial = nil
				return n, nil
			}
			st.partial = append(st.partial, p...)
			break
		}
		st.addLine(string(st.partial) + string(p[:i]))
		st.partial = nil
		p = p[i+1:]
	}
	return n, nil
}

func (st *callState) flushLogs() []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	if len(st.partial) > 0 {
		st.addLine(string(st.partial))
		st.partial = nil
	}
	return st.logs
}

// lastLines is what a failed WASI command said on stderr, for its error.
func (st *callState) lastLines(n int) string {
	logs := st.flushLogs()
	if len(logs) > n {
		logs = logs[len(logs)-n:]
	}
	return strings.TrimSpace(strings.Join(logs, "\n"))
}

// limitedBuffer collects a WASI command's stdout up to max bytes and
// remembers that more was written.
type limitedBuffer struct {
	buf      bytes.Buffer
	max      int
	overflow bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.buf.Len()+len(p) > b.max {
		b.overflow = true
		return 0, fmt.Errorf("stdout: %w (%d bytes)", ErrOutputTooLarge, b.max)
	}
	return b.buf.Write(p)
}

// instanceWriter forwards a pooled instance's stdio to whichever call is
// using the instance now.
type instanceWriter struct{ st *callState }

func (w *instanceWriter) Write(p []byte) (int, error) {
	if w.st == nil {
		return len(p), nil
	}
	return w.st.Write(p)
}
