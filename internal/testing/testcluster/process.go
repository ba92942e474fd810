package testcluster

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// This file is the part of the harness that needs no testing.TB, so that
// internal/bench (a command, not a test) starts its processes the same way.

// maxLogLines bounds a log kept in memory (a benchmark's process logs for
// hours); past it, later lines are dropped.
const maxLogLines = 100000

// LogBuffer is a process's log (its stderr), line by line, that readers
// can wait on.
type LogBuffer struct {
	mu    sync.Mutex
	cond  *sync.Cond
	lines []string
}

// NewLogBuffer returns an empty log.
func NewLogBuffer() *LogBuffer {
	b := &LogBuffer{}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// Add appends a line and wakes the waiters.
func (b *LogBuffer) Add(line string) {
	b.mu.Lock()
	if len(b.lines) < maxLogLines {
		b.lines = append(b.lines, line)
	}
	b.mu.Unlock()
	b.cond.Broadcast()
}

// Len is the number of lines so far.
func (b *LogBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.lines)
}

// String is the whole log, one line each.
func (b *LogBuffer) String() string { return b.Tail(-1) }

// Tail is the last n lines (all of them when n < 0).
func (b *LogBuffer) Tail(n int) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.lines
	if n >= 0 && len(l) > n {
		l = l[len(l)-n:]
	}
	if len(l) == 0 {
		return ""
	}
	return strings.Join(l, "\n") + "\n"
}

// wait waits for a line matching re at index from or later, until limit
// passes or stop is closed (then it looks once more).
func (b *LogBuffer) wait(re *regexp.Regexp, from int, limit time.Duration, stop <-chan struct{}) ([]string, error) {
	deadline := time.Now().Add(limit)
	timer := time.AfterFunc(limit, b.cond.Broadcast)
	defer timer.Stop()
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := from; ; {
		for ; i < len(b.lines); i++ {
			if m := re.FindStringSubmatch(b.lines[i]); m != nil {
				return m, nil
			}
		}
		select {
		case <-stop:
			return nil, fmt.Errorf("exited before logging a line matching %s", re)
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("no log line matching %s within %s", re, limit)
		}
		b.cond.Wait()
	}
}

// Process is one edgefaas process. Set its fields, then Start it; it can
// be started again (same arguments, same log) after it has ended.
type Process struct {
	Binary string
	Args   []string
	Prefix []string // a command the binary runs behind, e.g. ip netns exec NS
	Env    []string // its whole environment; nil: the test's
	Log    *LogBuffer

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the ended process's exit error
}

// Start starts the process and copies its stderr into Log.
func (p *Process) Start() error {
	p.mu.Lock()
	if p.Log == nil {
		p.Log = NewLogBuffer()
	}
	p.mu.Unlock()
	argv := append(append(append([]string{}, p.Prefix...), p.Binary), p.Args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = p.Env
	// A parent that dies (a test timeout panics past every Cleanup) takes
	// its processes with it, instead of leaving them running, holding
	// their ports and a CPU, under whatever runs next.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return fmt.Errorf("start %s: %w", p.Binary, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.Binary, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done, p.err = cmd, done, nil
	p.mu.Unlock()
	go func() {
		s := bufio.NewScanner(stderr)
		s.Buffer(make([]byte, 1<<20), 1<<20)
		for s.Scan() {
			p.Log.Add(s.Text())
		}
		err := cmd.Wait()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(done)
		p.Log.cond.Broadcast()
	}()
	return nil
}

func (p *Process) current() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd, p.done
}

// Pid is the running process's id (0 before Start).
func (p *Process) Pid() int {
	cmd, _ := p.current()
	if cmd == nil || cmd.Process == nil {
		return 0
	}
	return cmd.Process.Pid
}

// Done is closed when the process has ended.
func (p *Process) Done() <-chan struct{} {
	_, done := p.current()
	return done
}

// Wait waits for the process to end and returns its exit error.
func (p *Process) Wait() error {
	_, done := p.current()
	if done == nil {
		return errors.New("not started")
	}
	<-done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Signal sends sig to the process.
func (p *Process) Signal(sig syscall.Signal) error {
	cmd, _ := p.current()
	if cmd == nil || cmd.Process == nil {
		return errors.New("not started")
	}
	return cmd.Process.Signal(sig)
}

// Kill sends SIGKILL and waits for the process to end.
func (p *Process) Kill() {
	cmd, done := p.current()
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Stop sends SIGTERM, SIGKILL if the process has not ended after grace,
// and returns its exit error (nil for a clean exit).
func (p *Process) Stop(grace time.Duration) error {
	cmd, done := p.current()
	if cmd == nil || cmd.Process == nil {
		return nil
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		return fmt.Errorf("%s did not end within %s of SIGTERM", p.Binary, grace)
	}
	return p.Wait()
}

// WaitLog waits for a log line matching re, at line index from or later,
// and returns its submatches; it fails at once if the process ends first.
func (p *Process) WaitLog(re *regexp.Regexp, from int, limit time.Duration) ([]string, error) {
	return p.Log.wait(re, from, limit, p.Done())
}

// ListeningRE matches the core's "listening" log line; its group is the API address.
var ListeningRE = regexp.MustCompile(`msg="core listening" addr=(\S+)`)

// CoreProcess is a core that listens: its API address and the tokens its
// first boot wrote.
type CoreProcess struct {
	*Process
	DataDir string
	URL     string // http://HOST:PORT
	Admin   string
	Guest   string
}

// LaunchCore starts p, which runs `edgefaas core` over dataDir, waits
// (within limit) until it listens and reads its tokens. On an error the
// process is killed.
func LaunchCore(p *Process, dataDir string, limit time.Duration) (*CoreProcess, error) {
	if err := p.Start(); err != nil {
		return nil, err
	}
	c := &CoreProcess{Process: p, DataDir: dataDir}
	if err := c.AwaitListening(0, limit); err != nil {
		p.Kill()
		return nil, err
	}
	var err error
	if c.Admin, c.Guest, err = ReadTokens(dataDir); err != nil {
		p.Kill()
		return nil, err
	}
	return c, nil
}

// AwaitListening waits for the "listening" line at index from or later
// and sets URL from it.
func (c *CoreProcess) AwaitListening(from int, limit time.Duration) error {
	m, err := c.WaitLog(ListeningRE, from, limit)
	if err != nil {
		return fmt.Errorf("core: %w; log:\n%s", err, c.Log.Tail(40))
	}
	c.URL = "http://" + m[1]
	return nil
}

// ReadTokens reads the admin and guest tokens the core's first boot
// wrote into dataDir/tokens.
func ReadTokens(dataDir string) (admin, guest string, err error) {
	raw, err := os.ReadFile(dataDir + "/tokens")
	if err != nil {
		return "", "", fmt.Errorf("tokens file: %w", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "Admin":
			admin = v
		case "Guest":
			guest = v
		}
	}
	if admin == "" || guest == "" {
		return "", "", fmt.Errorf("the tokens file lacks Admin= or Guest=:\n%s", raw)
	}
	return admin, guest, nil
}

// FreePort returns a TCP port free on host at the time of the call.
func FreePort(host string) (string, error) {
	// The kernel may give the same ephemeral port to two listens in a row
	// (a core once got one port for both its API and its node address):
	// a port handed out once in this process is not handed out again.
	for range 100 {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return "", fmt.Errorf("listen on %s: %w", host, err)
		}
		_, port, _ := net.SplitHostPort(l.Addr().String())
		l.Close()
		key := net.JoinHostPort(host, port)
		if _, taken := handedOut.LoadOrStore(key, true); !taken {
			return port, nil
		}
	}
	return "", fmt.Errorf("no port on %s that this process has not handed out already", host)
}

// handedOut holds the HOST:PORT pairs FreePort has returned.
var handedOut sync.Map

// Environ is the test's environment with add appended and, with clean,
// without the EDGEFAAS_* variables a developer may have set.
func Environ(clean bool, add ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if clean && strings.HasPrefix(kv, "EDGEFAAS_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, add...)
}
