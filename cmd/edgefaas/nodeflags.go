package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/internal/egress"
	"github.com/edgefaas/edgefaas/internal/membudget"
	"github.com/edgefaas/edgefaas/internal/nodes"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// nodeFlags are the flags every node (core, worker, dev) shares.
type nodeFlags struct {
	name, addr, cookie, cookieFile string
	tls                            nodes.TLSFiles
	logLevel                       string
	lanDiscovery                   string
}

func (f *nodeFlags) register(cmd *cobra.Command, defaultAddr string) {
	fl := cmd.Flags()
	fl.StringVar(&f.name, "node-name", "", "this node's name, ROLE@HOST (default from --node-addr)")
	fl.StringVar(&f.addr, "node-addr", defaultAddr, "HOST:PORT other nodes reach this node on (port 0: any free port)")
	fl.StringVar(&f.cookie, "cookie", "", "shared secret between the core and its workers")
	fl.StringVar(&f.cookieFile, "cookie-file", "", "read the cookie from this file (e.g. the core's DATA_DIR/cookie)")
	fl.StringVar(&f.tls.CertFile, "tls-cert", "", "node certificate (PEM), with --tls-ca; default: signed at start by a CA derived from the cookie")
	fl.StringVar(&f.tls.KeyFile, "tls-key", "", "node private key (PEM)")
	fl.StringVar(&f.tls.CAFile, "tls-ca", "", "CA certificate (PEM): peers must present a certificate it signed")
	fl.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fl.StringVar(&f.lanDiscovery, "lan-discovery", "", "network interface for LAN discovery: cores multicast a signed beacon on UDP 45892, workers join the cores they hear (off by default)")
}

// setup makes the node's logger and resolves the flags into a NodeConfig;
// with generateCookie (a core) a missing cookie is generated and kept in
// the data directory.
func (f *nodeFlags) setup(dataDir string, generateCookie bool) (*slog.Logger, nodes.NodeConfig, error) {
	log, err := f.logger()
	if err != nil {
		return nil, nodes.NodeConfig{}, err
	}
	cfg, err := f.config(dataDir, log, generateCookie)
	return log, cfg, err
}

func (f *nodeFlags) config(dataDir string, log *slog.Logger, generateCookie bool) (nodes.NodeConfig, error) {
	host, port, err := net.SplitHostPort(f.addr)
	if err != nil {
		return nodes.NodeConfig{}, fmt.Errorf("--node-addr %q: %w", f.addr, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return nodes.NodeConfig{}, fmt.Errorf("--node-addr %q: bad port", f.addr)
	}
	cookie := f.cookie
	if cookie == "" && f.cookieFile != "" {
		b, err := os.ReadFile(f.cookieFile)
		_, enrolled := nodes.EnrolledCookie(dataDir)
		switch {
		case errors.Is(err, os.ErrNotExist) && enrolled:
			// Joined with a token: the core gave the cookie (below); a
			// unit file's default --cookie-file may name nothing.
		case err != nil:
			return nodes.NodeConfig{}, fmt.Errorf("--cookie-file: %w", err)
		default:
			cookie = strings.TrimSpace(string(b))
		}
	}
	if cookie == "" {
		if c, ok := nodes.EnrolledCookie(dataDir); ok { // joined with a token
			cookie = c
		}
	}
	if cookie == "" && generateCookie {
		c, created, err := nodes.LoadOrCreateCookie(dataDir)
		if err != nil {
			return nodes.NodeConfig{}, err
		}
		if created {
			log.Info("generated the node cookie; give it to workers with --cookie or --cookie-file", "path", filepath.Join(dataDir, "cookie"))
		}
		cookie = c
	}
	if cookie == "" {
		return nodes.NodeConfig{}, nodes.ErrNoCookie
	}
	if err := nodes.CheckCookie(cookie); err != nil {
		return nodes.NodeConfig{}, err
	}
	return nodes.NodeConfig{Name: f.name, ListenHost: host, ListenPort: uint16(p), Cookie: cookie, TLS: f.tls, DataDir: dataDir, Log: log}, nil
}

func (f *nodeFlags) logger() (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", f.logLevel, err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	startProfiler(log)
	return log, nil
}

// nodeStart is what core, dev and worker resolve from their flags before
// they start.
type nodeStart struct {
	log  *slog.Logger
	node nodes.NodeConfig
	// split is the node's memory budget shared out for its role.
	split membudget.Split
	// worker runs under the budget; a core without --with-worker uses its
	// egress policy only.
	worker nodes.WorkerConfig
}

// startNode makes the node's logger and resolves the node flags, the
// memory budget for role and the worker flags. A node that runs a core
// generates the cluster's cookie if none is given.
func startNode(nf *nodeFlags, wf *workerFlags, dataDir string, role membudget.Role) (nodeStart, error) {
	logger, ncfg, err := nf.setup(dataDir, role&membudget.Core != 0)
	if err != nil {
		return nodeStart{}, err
	}
	budget, split, err := nodeBudget(wf.memory.text, role, logger)
	if err != nil {
		return nodeStart{}, err
	}
	wcfg, err := wf.config(ncfg, budget)
	if err != nil {
		return nodeStart{}, err
	}
	return nodeStart{log: logger, node: ncfg, split: split, worker: wcfg}, nil
}

// workerFlags configure the runtime and the outbound policy of a worker.
type workerFlags struct {
	memory        sizeValue
	tags          []string
	allowHosts    []string
	egressAllow   []string
	allowNets     []string
	maxConcurrent int
	maxQueue      int
	perOwner      int
	queueBytes    sizeValue
}

func (f *workerFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.Var(&f.memory, "memory", "this node's memory budget: "+sizeHelp+" (default: the cgroup limit, else 3/4 of available memory)")
	fl.StringSliceVar(&f.tags, "tag", nil, "tag this worker (functions with metadata tag T run only on workers tagged T)")
	fl.StringSliceVar(&f.allowHosts, "allow-host", nil, "host every function may reach over HTTP/TCP (host, host:port, *.domain)")
	fl.StringSliceVar(&f.egressAllow, "egress-allow", nil, "hosts a function's own allowed_hosts may grant (host, host:port, *.domain, * for any public host); default none: functions reach only --allow-host hosts")
	fl.StringSliceVar(&f.allowNets, "allow-net", nil, "internal network (CIDR) or single ADDR:PORT functions may reach (default none: loopback, private, link-local and transition addresses are refused)")
	fl.IntVar(&f.maxConcurrent, "max-concurrent", 64, "invocations running at once")
	fl.IntVar(&f.maxQueue, "max-queue", 1024, "invocations waiting beyond that; more get a busy error")
	fl.IntVar(&f.perOwner, "max-concurrent-per-owner", 0, "invocations of one owner's functions running at once (default 3/4 of --max-concurrent; one owner also holds at most half of the queue)")
	fl.Var(&f.queueBytes, "max-queue-bytes", "the inputs of the invocations waiting, at most; more get a busy error (default a quarter of the guests' memory budget, 8-64MiB); "+sizeHelp)
}

func (f *workerFlags) config(node nodes.NodeConfig, budget membudget.Budget) (nodes.WorkerConfig, error) {
	eg, err := f.egress()
	if err != nil {
		return nodes.WorkerConfig{}, err
	}
	return nodes.WorkerConfig{
		Node:   node,
		Engine: wasm.Config{MaxConcurrent: f.maxConcurrent, MaxQueue: f.maxQueue, MaxConcurrentPerOwner: f.perOwner, MaxQueueBytes: f.queueBytes.bytes, CompileChild: compileChild()},
		Egress: eg,
		Budget: budget,
		Tags:   f.tags,
	}, nil
}

// egress is the operator's outbound policy from --allow-host,
// --egress-allow and --allow-net: functions' on a worker, sinks' on a core.
func (f *workerFlags) egress() (egress.Config, error) {
	var (
		nets      []netip.Prefix
		endpoints []netip.AddrPort
	)
	for _, n := range f.allowNets {
		if ap, err := netip.ParseAddrPort(n); err == nil {
			endpoints = append(endpoints, ap)
			continue
		}
		p, err := netip.ParsePrefix(n)
		if err != nil {
			return egress.Config{}, fmt.Errorf("--allow-net %q: want a CIDR or ADDR:PORT: %w", n, err)
		}
		nets = append(nets, p)
	}
	return egress.Config{AllowedHosts: f.allowHosts, Grantable: f.egressAllow, AllowedNetworks: nets, AllowedEndpoints: endpoints}, nil
}
