package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
)

// proc is one edgefaas process the suite started. It keeps the process's
// log (stderr) to learn addresses and to show on failure.
type proc struct {
	binary string
	args   []string
	dir    string
	// pprof is the address of the process's profiler (EDGEFAAS_PPROF on a
	// free loopback port), for the invocation path's CPU profiles.
	pprof  string
	prefix []string // a command the binary runs behind (memcgroup.Group.Wrap)

	mu    sync.Mutex
	cmd   *exec.Cmd
	lines []string
	done  chan struct{}
	cond  *sync.Cond
}

func startProc(binary, dir string, args ...string) (*proc, error) {
	p := &proc{binary: binary, args: args, dir: dir}
	p.cond = sync.NewCond(&p.mu)
	return p, p.start()
}

func (p *proc) start() error {
	argv := append(append(append([]string{}, p.prefix...), p.binary), p.args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(p.dir, "config"))
	if p.pprof == "" {
		if port, err := freePort("127.0.0.1"); err == nil {
			p.pprof = "127.0.0.1:" + port
		}
	}
	if p.pprof != "" {
		cmd.Env = append(cmd.Env, "EDGEFAAS_PPROF="+p.pprof)
	}
	cmd.Stdout = io.Discard
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.binary, err)
	}
	done := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.done = cmd, done
	p.mu.Unlock()
	go func() {
		s := bufio.NewScanner(stderr)
		s.Buffer(make([]byte, 1<<20), 1<<20)
		for s.Scan() {
			p.mu.Lock()
			if len(p.lines) < 100000 {
				p.lines = append(p.lines, s.Text())
			}
			p.mu.Unlock()
			p.cond.Broadcast()
		}
		cmd.Wait()
		close(done)
		p.cond.Broadcast()
	}()
	return nil
}

// pid is the running process's id.
func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// log returns the last n lines of the process's log.
func (p *proc) log(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.lines
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// waitLog waits for a line matching re, from line index from on.
func (p *proc) waitLog(re *regexp.Regexp, from int, limit time.Duration) ([]string, error) {
	deadline := time.Now().Add(limit)
	t := time.AfterFunc(limit, p.cond.Broadcast)
	defer t.Stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := from; ; {
		for ; i < len(p.lines); i++ {
			if m := re.FindStringSubmatch(p.lines[i]); m != nil {
				return m, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited before logging %s", p.args[0], re)
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: no log line matching %s within %s", p.args[0], re, limit)
		}
		p.cond.Wait()
	}
}

func (p *proc) lineCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.lines)
}

// stop sends SIGTERM, then SIGKILL after 10 s, and waits.
func (p *proc) stop() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

// kill sends SIGKILL and waits.
func (p *proc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil || cmd.Process == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// platform is a running edgefaas deployment: a core and its workers, or a
// single-box core with its own worker.
type platform struct {
	name     string
	core     *proc
	workers  []*proc
	url      string
	nodeAddr string
	guest    string
	admin    string
	api      *client.Client // admin token: nodes
	user     *client.Client // guest token: functions
}

var listening = regexp.MustCompile(`msg="core listening" addr=(\S+)`)

func freePort(host string) (string, error) {
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		return "", fmt.Errorf("listen on %s: %w", host, err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port, nil
}

// startPlatform starts a core on coreHost; with workers == 0 it is a
// single box (core --with-worker), else that many worker processes join it
// from 127.0.0.2, 127.0.0.3, ...
func startPlatform(ctx context.Context, name, binary, dir, coreHost string, workers int) (*platform, error) {
	return startPlatformWith(ctx, nil, name, binary, dir, coreHost, workers)
}

// startPlatformWith is startPlatform with the core started behind prefix
// and given coreArgs besides its own.
func startPlatformWith(ctx context.Context, prefix []string, name, binary, dir, coreHost string, workers int, coreArgs ...string) (*platform, error) {
	pl := &platform{name: name}
	nodePort, err := freePort(coreHost)
	if err != nil {
		return nil, err
	}
	pl.nodeAddr = coreHost + ":" + nodePort
	coreDir := filepath.Join(dir, "core")
	args := []string{"core", "--data-dir", coreDir, "--http-addr", coreHost + ":0", "--node-addr", pl.nodeAddr}
	if workers == 0 {
		args = append(args, "--with-worker", "--allow-net", "127.0.0.0/8", "--egress-allow", "*")
	}
	args = append(args, coreArgs...)
	pl.core = &proc{binary: binary, args: args, dir: dir, prefix: prefix}
	pl.core.cond = sync.NewCond(&pl.core.mu)
	if err := pl.core.start(); err != nil {
		return nil, err
	}
	m, err := pl.core.waitLog(listening, 0, 60*time.Second)
	if err != nil {
		pl.stop()
		return nil, fmt.Errorf("%s core: %w\n%s", name, err, pl.core.log(40))
	}
	pl.url = "http://" + m[1]
	b, err := os.ReadFile(filepath.Join(coreDir, "tokens"))
	if err != nil {
		pl.stop()
		return nil, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Admin="); ok {
			pl.admin = v
		}
		if v, ok := strings.CutPrefix(line, "Guest="); ok {
			pl.guest = v
		}
	}
	if pl.api, err = client.New(pl.url, pl.admin); err != nil {
		pl.stop()
		return nil, err
	}
	if pl.user, err = client.New(pl.url, pl.guest); err != nil {
		pl.stop()
		return nil, err
	}
	for i := range workers {
		host := fmt.Sprintf("127.0.0.%d", 2+i)
		port, err := freePort(host)
		if err != nil {
			pl.stop()
			return nil, err
		}
		wdir := filepath.Join(dir, fmt.Sprintf("worker%d", i+1))
		w, err := startProc(binary, wdir, "worker", "--data-dir", wdir, "--node-addr", host+":"+port,
			"--join", pl.nodeAddr, "--cookie-file", filepath.Join(coreDir, "cookie"), "--allow-net", "127.0.0.0/8", "--egress-allow", "*")
		if err != nil {
			pl.stop()
			return nil, err
		}
		pl.workers = append(pl.workers, w)
	}
	want := max(workers, 1)
	if err := pl.waitNodes(ctx, time.Now().Add(-time.Hour), want); err != nil {
		pl.stop()
		return nil, err
	}
	return pl, nil
}

// waitNodes waits until the core lists want workers that reported after since.
func (pl *platform) waitNodes(ctx context.Context, since time.Time, want int) error {
	var last []client.Node
	var lastErr error
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		ns, err := pl.api.ListNodes(c)
		cancel()
		lastErr = err
		if err == nil {
			last = ns
			n := 0
			for _, x := range ns {
				if x.LastReport.After(since) {
					n++
				}
			}
			if n >= want {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	logs := pl.core.log(30)
	for _, w := range pl.workers {
		logs += "\n--- worker\n" + w.log(30)
	}
	return fmt.Errorf("%s: %d workers never joined (last list %v, err %v)\n%s", pl.name, want, last, lastErr, logs)
}

// pids are the platform's processes (core first).
func (pl *platform) pids() []int {
	ps := []int{pl.core.pid()}
	for _, w := range pl.workers {
		ps = append(ps, w.pid())
	}
	return ps
}

// kill kills the platform's processes at once.
func (pl *platform) kill() {
	for _, w := range pl.workers {
		w.kill()
	}
	if pl.core != nil {
		pl.core.kill()
	}
}

func (pl *platform) stop() {
	for _, w := range pl.workers {
		w.stop()
	}
	if pl.core != nil {
		pl.core.stop()
	}
}

// upload creates (or replaces) function name from code in module "_".
func (pl *platform) upload(ctx context.Context, name string, code []byte, md *client.Metadata) error {
	c, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	_, err := pl.user.CreateFunction(c, client.DefaultModule, client.Upload{Name: name, Code: code, Metadata: md})
	if client.IsStatus(err, 409) {
		_, err = pl.user.UpdateFunction(c, client.DefaultModule, name, client.Upload{Code: code, Metadata: md})
	}
	if err != nil {
		return fmt.Errorf("%s: upload %s: %w", pl.name, name, err)
	}
	return nil
}

var errStatus = errors.New("unexpected status")
