//go:build forgery

// Command forger is a hostile worker for tests/cluster: a real worker node
// (it joins with a join token, or the cookie where the core admits it, and
// reports its own state honestly) that also forges, every tick, what
// another node would say: answers to the core's pending calls, reports
// naming another worker and a phantom, a compile acknowledgement for
// another worker, and commands to a victim worker
// (cancel its calls, evict its code, push it code, attach it to a fake
// core). What goes to the core and what goes to the victim are sent by two
// processes, so a link that is slow to come up to one does not hold back
// the other. It is built only by the test, with the forgery tag, and never
// ships.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"

	"github.com/edgefaas/edgefaas/internal/actors/wire"
	"github.com/edgefaas/edgefaas/internal/nodes"
	"github.com/edgefaas/edgefaas/internal/version"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "forger:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		join, cookieFile, nodeAddr, dataDir string
		joinToken, joinAPI                  string
		core, victim, victimAddr, phantom   string
		evict, codeFile                     string
		ids                                 int
	)
	flag.StringVar(&join, "join", "", "the core's node address HOST:PORT")
	flag.StringVar(&core, "core", "", "the core's node name")
	flag.StringVar(&cookieFile, "cookie-file", "", "the cluster cookie (without -join-token)")
	flag.StringVar(&joinToken, "join-token", "", "a join token to join with, as 'edgefaas worker --join-token'")
	flag.StringVar(&joinAPI, "join-api", "", "the core's API URL for -join-token")
	flag.StringVar(&nodeAddr, "node-addr", "", "this node's HOST:PORT")
	flag.StringVar(&dataDir, "data-dir", "", "this node's data directory")
	flag.StringVar(&victim, "victim", "", "the honest worker to speak for")
	flag.StringVar(&victimAddr, "victim-addr", "", "its node address NAME@HOST:PORT")
	flag.StringVar(&phantom, "phantom", "worker@127.0.0.66", "a worker that does not exist")
	flag.StringVar(&evict, "evict", "", "a code hash to evict on the victim")
	flag.StringVar(&codeFile, "code", "", "a .wasm file to push to the victim")
	flag.IntVar(&ids, "ids", 128, "answer call IDs 1..N")
	flag.Parse()
	host, port, err := net.SplitHostPort(nodeAddr)
	if err != nil {
		return err
	}
	var cookie []byte
	if joinToken != "" {
		if err := nodes.Enroll(context.Background(), joinAPI, joinToken, "worker@"+host, dataDir); err != nil {
			return fmt.Errorf("join with the token: %w", err)
		}
		c, _ := nodes.EnrolledCookie(dataDir)
		cookie = []byte(c)
	} else if cookie, err = os.ReadFile(cookieFile); err != nil {
		return err
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return err
	}
	code, err := os.ReadFile(codeFile)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(code)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ncfg := nodes.NodeConfig{Name: "worker@" + host, ListenHost: host, ListenPort: uint16(p),
		Cookie: string(trim(cookie)), DataDir: dataDir, Log: log}
	w, err := nodes.StartWorker(nodes.WorkerConfig{Node: ncfg, Join: []string{join}})
	if err != nil {
		return err
	}
	n := w.ForgeryNode()
	if err := nodes.ForgeryRoute(n, ncfg, victimAddr); err != nil {
		return err
	}
	for _, to := range []string{toCore, toVictim} {
		f := &forger{to: to, core: core, victim: victim, phantom: phantom, evict: evict, code: code,
			hash: hex.EncodeToString(sum[:]), ids: ids, self: n.Name(), linked: n.Nodes, log: log}
		if _, err := n.Spawn("forger_"+to, gen.ProcessOptions{}, f); err != nil {
			return err
		}
	}
	log.Info("forger running", "node", n.Name(), "victim", victim)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	go func() { <-ctx.Done(); w.Stop() }()
	w.Wait()
	return nil
}

func trim(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

type tick struct{}

// What a forger process sends to: the core or the victim.
const (
	toCore   = "core"
	toVictim = "victim"
)

type forger struct {
	gen.Server
	to                                       string
	core, victim, phantom, evict, hash, self string
	code                                     []byte
	ids                                      int
	rounds                                   int
	linked                                   func() []string // the nodes this node has a link to
	log                                      *slog.Logger
}

func (f *forger) Init(p *gen.ServerProcess, _ ...etf.Term) error {
	p.Send(p.Self(), tick{})
	return nil
}

func (f *forger) HandleInfo(p *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	if _, ok := msg.(tick); !ok {
		return gen.ServerStatusOK
	}
	if f.to == toCore {
		// The worker's own reporter makes the link to the core: a send
		// racing it to connect could be lost with the losing connection.
		if !slices.Contains(f.linked(), f.core) {
			p.SendAfter(p.Self(), tick{}, 100*time.Millisecond)
			return gen.ServerStatusOK
		}
		if f.rounds == 0 {
			f.log.Info("forging to the core over its link", "core", f.core)
		}
		f.forgeToCore(p)
	} else {
		f.forgeToVictim(p)
	}
	f.rounds++
	p.SendAfter(p.Self(), tick{}, 100*time.Millisecond)
	return gen.ServerStatusOK
}

// forgeToCore answers the core's calls, reports load and acknowledges
// code as the victim, and reports a phantom.
func (f *forger) forgeToCore(p *gen.ServerProcess) {
	// Answers to every call the core may have in flight, as the victim.
	for k := range 8 {
		to := gen.ProcessID{Name: fmt.Sprintf("invoker_%d", k), Node: f.core}
		for id := 1; id <= f.ids; id++ {
			p.Send(to, wire.Result{ID: id, Status: wire.StatusOK, Output: []byte(`{"forged":true}`), Node: f.victim})
		}
	}
	// The victim's state, and a worker that does not exist.
	sched := gen.ProcessID{Name: "scheduler", Node: f.core}
	v := version.Get().Version
	p.Send(sched, wire.Report{Node: f.victim, Tags: []byte("honest"), TotalMemory: 1 << 30, Running: 777, MaxRunning: 1, Version: v})
	p.Send(sched, wire.Report{Node: f.phantom, Tags: []byte("honest"), TotalMemory: 1 << 30, FreeMemory: 1 << 30, MaxRunning: 64, Version: v})
	// A compile acknowledgement as the victim: the version it would hold
	// steers placement to it.
	p.Send(gen.ProcessID{Name: "registry", Node: f.core}, wire.Cached{ID: 1, Node: f.victim, Hash: f.hash})
}

// forgeToVictim sends the victim commands as if from its core.
func (f *forger) forgeToVictim(p *gen.ServerProcess) {
	// Commands to the victim, as if from its core.
	for id := 1; id <= f.ids; id++ {
		p.Send(gen.ProcessID{Name: wire.RunnerName, Node: f.victim}, wire.Cancel{ID: id, Core: f.core})
	}
	cache := gen.ProcessID{Name: wire.CacheName, Node: f.victim}
	if f.evict != "" {
		p.Send(cache, wire.Evict{Hash: f.evict})
	}
	if f.rounds%20 == 0 { // a compile is costly: now and then
		p.Send(cache, wire.Cache{Hash: f.hash, Code: f.code})
	}
	p.Send(gen.ProcessID{Name: wire.ReporterName, Node: f.victim}, wire.Join{Node: f.self})
}
