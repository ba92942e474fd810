package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/edgefaas/edgefaas/internal/core"
	"github.com/edgefaas/edgefaas/internal/core/api"
	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/replication"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/membudget"
	"github.com/edgefaas/edgefaas/internal/nodes"
)

// coreCommand builds `edgefaas core`: the API and storage node.
func coreCommand() *cobra.Command {
	var (
		dataDir        string
		secretsKeyFile string
		httpAddr       string
		nodeJoin       string
		maxUploadBytes int64
		node           nodeFlags
		withWorker     bool
		publicMetrics  bool
		worker         workerFlags
		acts           activationFlags
		trig           triggerFlags
		sinkOpts       sinkFlags
		apiTLS         apiTLSFlags
		groupAddr      string
		joinGroup      string
		snapEntries    uint64
		quota          quotaFlags
	)
	cmd := &cobra.Command{
		Use:   "core",
		Short: "Run the core node: the HTTP API and the function store",
		Long: `Run the core node: FunLess's REST API v1, the function store, and the
ergo node workers join (--node-addr, default 127.0.0.1:4001).

Every flag can also be set with an EDGEFAAS_* environment variable named after
it (--data-dir is EDGEFAAS_DATA_DIR); a flag given on the command line wins.
On first boot the admin and guest tokens are written to <data-dir>/tokens.
SIGTERM or SIGINT shut down cleanly: in-flight requests finish, then the
store is closed.`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			return flagsFromEnv(cmd.Flags())
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			defQuota, err := quota.quota()
			if err != nil {
				return err
			}
			role := membudget.Core
			if withWorker {
				role = membudget.SingleBox
			}
			st, err := startNode(&node, &worker, dataDir, role)
			if err != nil {
				return err
			}
			var wcfg *nodes.WorkerConfig
			if withWorker {
				wcfg = &st.worker
			}
			actCfg, err := acts.config()
			if err != nil {
				return err
			}
			storeOpts := storageOptions(st.split)
			storeOpts.DefaultQuota = &defQuota
			eg, err := worker.egress()
			if err != nil {
				return err
			}
			group, err := groupConfig(groupAddr, joinGroup, st.node.Cookie)
			if err != nil {
				return err
			}
			if err := groupSnapshots(group, snapEntries, cmd.Flags().Changed("group-snapshot-entries")); err != nil {
				return err
			}
			joinMode, err := groupJoinMode(nodes.JoinMode(nodeJoin), group)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return core.Run(ctx, core.Config{
				Group:          group,
				DataDir:        dataDir,
				HTTPAddr:       httpAddr,
				MaxUploadBytes: maxUploadBytes,
				BodyBudget:     bodyBudget(st.split),
				PublicMetrics:  publicMetrics,
				TLS:            api.TLSMode(apiTLS.mode),
				TLSCertFile:    apiTLS.cert,
				TLSKeyFile:     apiTLS.key,
				Inspect:        uploadInspector(st.split.ValidatorConcurrency),
				Storage:        storeOpts,
				SecretsKeyFile: secretsKeyFile,
				Logger:         st.log,
				Activations:    actCfg,
				Triggers:       trig.config(st.worker.Egress), // the worker's egress policy also bounds triggers' brokers
				Sinks:          sinkOpts.config(eg),
				Cluster: func(store *storage.Store, records storage.NodeRecords) (cluster.Cluster, error) {
					var trust *nodes.GroupTrust
					if records != nil {
						trust = &nodes.GroupTrust{Records: records, Founder: group.Join == ""}
					}
					return nodes.StartCore(nodes.CoreConfig{Node: st.node, Store: store, WithWorker: wcfg, JoinMode: joinMode,
						Discovery: nodes.Discovery{Interface: node.lanDiscovery}, Group: trust})
				},
			})
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", defaultDataDir(), "directory for the database and the tokens file")
	cmd.Flags().StringVar(&secretsKeyFile, "secrets-key-file", "", "key file that seals sink and trigger secrets at rest, created on first boot (default DATA_DIR/secrets.key; put it on another medium to keep it apart from the database)")
	cmd.Flags().StringVar(&httpAddr, "http-addr", "127.0.0.1:4000", "address the HTTP API listens on")
	cmd.Flags().StringVar(&nodeJoin, "node-join", string(nodes.JoinAuto), "which workers may join: token (a certificate from the core's CA, got once with a join token from 'edgefaas node token create': the cookie alone does not let a node in, and revoking a worker shuts it out), any (also a certificate derived from the cookie: for moving cookie-only workers to tokens), or auto (token, or with --tls-cert/--tls-ca the operator's CA decides)")
	apiTLS.register(cmd)
	cmd.Flags().Int64Var(&maxUploadBytes, "max-upload-bytes", api.DefaultMaxUploadBytes, "largest accepted function code, in bytes (larger uploads get 413)")
	node.register(cmd, "127.0.0.1:4001")
	cmd.Flags().BoolVar(&publicMetrics, "public-metrics", false, "serve /metrics without a token (it shows counts, never function data)")
	cmd.Flags().StringVar(&groupAddr, "group-addr", "", "make this core a member of a core group: the address (HOST:PORT, not a wildcard) its replication listens on and other cores dial; it also names the member. Without --join-group, the first start makes a new group of this core. Every core of the group holds the same cookie")
	cmd.Flags().StringVar(&joinGroup, "join-group", "", "with --group-addr: on the first start, join the core group of the core whose --group-addr is HOST:PORT (it receives the group's state)")
	cmd.Flags().Uint64Var(&snapEntries, "group-snapshot-entries", replication.DefaultSnapshotEntries, "with --group-addr: log entries between two snapshots of this core's store, and entries kept behind the newest for a core a little behind; a core further behind, or joining, receives the snapshot")
	cmd.Flags().BoolVar(&withWorker, "with-worker", false, "also run a worker on this node (a single-box edge site; remote workers can still join)")
	worker.register(cmd)
	acts.register(cmd)
	trig.register(cmd)
	sinkOpts.register(cmd)
	quota.register(cmd)
	return cmd
}

// groupConfig is the core group membership the flags ask for, nil for a
// single core.
func groupConfig(addr, join, cookie string) (*core.GroupConfig, error) {
	if addr == "" {
		if join != "" {
			return nil, fmt.Errorf("--join-group %s needs --group-addr: the address this core's replication listens on", join)
		}
		return nil, nil
	}
	for _, a := range []struct{ flag, v string }{{"--group-addr", addr}, {"--join-group", join}} {
		if a.v == "" {
			continue
		}
		host, port, err := net.SplitHostPort(a.v)
		if err != nil || port == "" || port == "0" {
			return nil, fmt.Errorf("%s %q: want HOST:PORT with a port", a.flag, a.v)
		}
		if ip := net.ParseIP(host); a.flag == "--group-addr" && (host == "" || ip != nil && ip.IsUnspecified()) {
			return nil, fmt.Errorf("--group-addr %q: other cores dial it, so it must name this host, not a wildcard", a.v)
		}
	}
	if join == addr {
		return nil, fmt.Errorf("--join-group %s is this core's own --group-addr: name another member", join)
	}
	tlsCfg, peer, err := nodes.GroupTLS(cookie, addr)
	if err != nil {
		return nil, err
	}
	return &core.GroupConfig{ID: addr, Addr: addr, Join: join, TLS: tlsCfg, Peer: peer}, nil
}

// minSnapshotEntries is the smallest --group-snapshot-entries: below it
// a core would checkpoint its whole store for a handful of writes.
const minSnapshotEntries = 16

// groupSnapshots sets the group's snapshot spacing from
// --group-snapshot-entries (given says whether the flag was).
func groupSnapshots(group *core.GroupConfig, entries uint64, given bool) error {
	switch {
	case group == nil && given:
		return errors.New("--group-snapshot-entries needs --group-addr: a single core keeps no log to snapshot")
	case group == nil:
		return nil
	case entries < minSnapshotEntries:
		return fmt.Errorf("--group-snapshot-entries %d: want at least %d (each snapshot checkpoints the whole store)", entries, minSnapshotEntries)
	}
	group.SnapshotEntries = entries
	return nil
}

// groupJoinMode is the node join mode of a core: as given on a single
// core; in a core group the default admits cookie-holding workers too
// (any), as groups did before they shared one node CA, and token, given,
// admits only workers that joined with a token made on any core.
func groupJoinMode(mode nodes.JoinMode, group *core.GroupConfig) (nodes.JoinMode, error) {
	if group == nil {
		return mode, nil
	}
	switch mode {
	case "", nodes.JoinAuto:
		return nodes.JoinAny, nil
	}
	return mode, nil // refused with its reason by the node
}

// flagsFromEnv sets every flag not given on the command line from its
// EDGEFAAS_* variable, so containers and systemd units need no arguments.
func flagsFromEnv(fs *pflag.FlagSet) error {
	var err error
	fs.VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		name := "EDGEFAAS_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if serr := fs.Set(f.Name, v); serr != nil {
				err = fmt.Errorf("environment variable %s=%q: %w", name, v, serr)
			}
		}
	})
	return err
}

// defaultDataDir is $XDG_DATA_HOME/edgefaas/core, else
// ~/.local/share/edgefaas/core, else ./edgefaas-data/core.
func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "edgefaas", "core")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "share", "edgefaas", "core")
	}
	return filepath.Join("edgefaas-data", "core")
}
