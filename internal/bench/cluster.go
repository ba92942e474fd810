package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/wait"
)

// proc is one edgefaas process the suite started, with its profiler's
// address: EDGEFAAS_PPROF on a free loopback port, for the invocation
// path's CPU profiles.
type proc struct {
	*testcluster.Process
	pprof   string
	dataDir string // its --data-dir
}

// newProc prepares (does not start) the binary with args behind prefix,
// its configuration under dir.
func newProc(binary, dir string, prefix []string, args ...string) *proc {
	p := &proc{}
	env := testcluster.Environ(false, "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	if port, err := testcluster.FreePort("127.0.0.1"); err == nil {
		p.pprof = "127.0.0.1:" + port
		env = append(env, "EDGEFAAS_PPROF="+p.pprof)
	}
	p.Process = &testcluster.Process{Binary: binary, Args: args, Prefix: prefix, Env: env}
	return p
}

func (p *proc) start() error { return p.Start() }

// pid is the running process's id.
func (p *proc) pid() int { return p.Pid() }

// log returns the last n lines of the process's log.
func (p *proc) log(n int) string { return strings.TrimSuffix(p.Log.Tail(n), "\n") }

// stop sends SIGTERM, then SIGKILL after 10 s, and waits.
func (p *proc) stop() { p.Stop(10 * time.Second) }

// kill sends SIGKILL and waits.
func (p *proc) kill() { p.Kill() }

// platform is a running edgefaas deployment: a core and its workers, or a
// single-box core with its own worker.
type platform struct {
	name     string
	core     *proc
	workers  []*proc
	url      string
	nodeAddr string
	joins    []string // the node addresses its workers join: its own, or every core of its group
	guest    string
	admin    string
	api      *client.Client // admin token: nodes
	user     *client.Client // guest token: functions
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
	return startPlatformArgs(ctx, prefix, name, binary, dir, coreHost, workers, coreArgs, nil)
}

// startPlatformArgs is startPlatformWith with workerArgs given to every
// worker besides its own.
func startPlatformArgs(ctx context.Context, prefix []string, name, binary, dir, coreHost string, workers int, coreArgs, workerArgs []string) (*platform, error) {
	pl, err := startCore(prefix, name, binary, dir, coreHost, workers == 0, "", coreArgs)
	if err != nil {
		return nil, err
	}
	if err := pl.startWorkers(ctx, binary, dir, 2, workers, workerArgs); err != nil {
		pl.stop()
		return nil, err
	}
	return pl, nil
}

// startCore starts a core on coreHost, a single box with withWorker, with
// coreArgs besides its own, and waits until it listens. Its tokens are
// read from tokensDir, the core's own data directory if empty (a core
// that joined a group has none: the group's are its first member's).
func startCore(prefix []string, name, binary, dir, coreHost string, withWorker bool, tokensDir string, coreArgs []string) (*platform, error) {
	pl := &platform{name: name}
	nodePort, err := testcluster.FreePort(coreHost)
	if err != nil {
		return nil, err
	}
	pl.nodeAddr = coreHost + ":" + nodePort
	pl.joins = []string{pl.nodeAddr}
	coreDir := filepath.Join(dir, "core")
	args := []string{"core", "--data-dir", coreDir, "--http-addr", coreHost + ":0", "--node-addr", pl.nodeAddr}
	if withWorker {
		args = append(args, "--with-worker", "--allow-net", "127.0.0.0/8", "--egress-allow", "*")
	}
	args = append(args, coreArgs...)
	pl.core = newProc(binary, dir, prefix, args...)
	pl.core.dataDir = coreDir
	if tokensDir == "" {
		tokensDir = coreDir
	}
	c, err := testcluster.LaunchCore(pl.core.Process, tokensDir, 60*time.Second) // tokensDir: where it reads the tokens
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	pl.url, pl.admin, pl.guest = c.URL, c.Admin, c.Guest
	if pl.api, err = client.New(pl.url, pl.admin); err != nil {
		pl.stop()
		return nil, err
	}
	if pl.user, err = client.New(pl.url, pl.guest); err != nil {
		pl.stop()
		return nil, err
	}
	return pl, nil
}

// startWorkers starts n worker processes on 127.0.0.firstHost,
// 127.0.0.firstHost+1, ..., each joined with a join token to every core
// of pl.joins, and waits until pl lists them (with n == 0, until it lists
// its own worker: a single box).
func (pl *platform) startWorkers(ctx context.Context, binary, dir string, firstHost, n int, workerArgs []string) error {
	for i := range n {
		host := fmt.Sprintf("127.0.0.%d", firstHost+i)
		port, err := testcluster.FreePort(host)
		if err != nil {
			return err
		}
		wdir := filepath.Join(dir, fmt.Sprintf("worker%d", i+1))
		jt, err := pl.api.CreateJoinToken(ctx, 10*time.Minute, "worker@"+host) // workers join as a new site's do
		if err != nil {
			return fmt.Errorf("%s: join token: %w", pl.name, err)
		}
		args := []string{"worker", "--data-dir", wdir, "--node-addr", host + ":" + port}
		for _, j := range pl.joins {
			args = append(args, "--join", j)
		}
		args = append(args, "--join-token", jt.Token, "--join-api", pl.url, "--allow-net", "127.0.0.0/8", "--egress-allow", "*")
		w := newProc(binary, wdir, nil, append(args, workerArgs...)...)
		w.dataDir = wdir
		if err := w.start(); err != nil {
			return err
		}
		pl.workers = append(pl.workers, w)
	}
	return pl.waitNodes(ctx, time.Now().Add(-time.Hour), max(n, 1))
}

// waitNodes waits until the core lists want workers that reported after since.
func (pl *platform) waitNodes(ctx context.Context, since time.Time, want int) error {
	var last []client.Node
	var lastErr error
	err := wait.Until(ctx, 60*time.Second, fmt.Sprintf("%s: %d workers join", pl.name, want), func() bool {
		c, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		ns, err := pl.api.ListNodes(c)
		lastErr = err
		if err != nil {
			return false
		}
		last = ns
		n := 0
		for _, x := range ns {
			if x.LastReport.After(since) {
				n++
			}
		}
		return n >= want
	})
	if err == nil || ctx.Err() != nil {
		return err
	}
	logs := pl.core.log(30)
	for _, w := range pl.workers {
		logs += "\n--- worker\n" + w.log(30)
	}
	return fmt.Errorf("%w (last list %v, err %v)\n%s", err, last, lastErr, logs)
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
