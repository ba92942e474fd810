package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/internal/membudget"
	"github.com/edgefaas/edgefaas/internal/nodes"
)

// workerCommand builds `edgefaas worker`: a node that runs functions for
// the cores it joins.
func workerCommand() *cobra.Command {
	var (
		dataDir     string
		joins       []string
		joinDNS     []string
		joinToken   string
		joinAPI     string
		metricsAddr string
		metricsTok  string
		metricsPub  bool
		node        nodeFlags
		worker      workerFlags
	)
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a worker node that runs functions for one or more cores",
		Long: `Run a worker node: it joins the cores given with --join (their --node-addr),
reports its architecture, memory and load to them, and runs the functions
they send. The worker dials the cores, so it needs no inbound port: a worker
behind NAT works as long as it can reach the core.

Every flag can also be set with an EDGEFAAS_* environment variable.`,
		Example: `  edgefaas worker --join 10.0.0.5:4001 --join-token "$(edgefaas node token create)"
  edgefaas worker --join 10.0.0.5:4001 --cookie-file /etc/edgefaas/cookie
  edgefaas worker --join-dns edgefaas-core.edge.svc.cluster.local:4001 --cookie $COOKIE
  edgefaas worker --lan-discovery eth0 --cookie-file /etc/edgefaas/cookie
  edgefaas worker --node-addr 127.0.0.2:0 --join core@127.0.0.1:4001 --cookie-file /etc/edgefaas/cookie --tag gpu`,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return flagsFromEnv(cmd.Flags()) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			if err := joinWithToken(cmd.Context(), &node, joinToken, joinAPI, joins, dataDir); err != nil {
				return err
			}
			st, err := startNode(&node, &worker, dataDir, membudget.Worker)
			if err != nil {
				return err
			}
			logger, wcfg := st.log, st.worker
			wcfg.Join = joins
			wcfg.Discovery = nodes.Discovery{Interface: node.lanDiscovery, DNS: joinDNS}
			w, err := nodes.StartWorker(wcfg)
			if err != nil {
				return err
			}
			logger.Info("worker started", "node", w.Name(), "cores", joins)
			if metricsAddr != "" {
				var opts nodes.MetricsOptions
				switch {
				case metricsPub:
				case metricsTok != "":
					b, err := os.ReadFile(metricsTok)
					if err != nil {
						w.Stop()
						return fmt.Errorf("--metrics-token-file: %w", err)
					}
					opts.Token = strings.TrimSpace(string(b))
				default:
					tok, created, err := nodes.LoadOrCreateMetricsToken(dataDir)
					if err != nil {
						w.Stop()
						return fmt.Errorf("metrics token: %w", err)
					}
					if created {
						logger.Info("generated the metrics token; scrapers send it as a bearer token", "path", filepath.Join(dataDir, nodes.MetricsTokenFile))
					}
					opts.Token = tok
				}
				addr, err := w.ServeMetrics(metricsAddr, opts)
				if err != nil {
					w.Stop()
					return fmt.Errorf("--metrics-addr: %w", err)
				}
				logger.Info("worker metrics", "addr", addr.String())
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			go func() { <-ctx.Done(); w.Stop() }()
			w.Wait()
			w.Stop()
			if err := w.Refused(); err != nil {
				logger.Error("worker refused by its cores; exiting", "err", err)
				return err
			}
			if ctx.Err() == nil {
				// Not asked to stop: the supervision tree gave up. Exit
				// non-zero so the service manager restarts the process.
				logger.Error("worker node stopped: its supervision tree gave up; exiting so the process is restarted")
				return errors.New("worker node stopped on its own")
			}
			logger.Info("stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", filepath.Join(filepath.Dir(defaultDataDir()), "worker"), "directory for compiled code and the metrics token")
	cmd.Flags().StringVar(&joinToken, "join-token", "", "one-time join token from 'edgefaas node token create': exchanged once for a certificate from the core's CA, kept in DATA_DIR/node-tls (then neither the token nor the cookie is needed)")
	cmd.Flags().StringVar(&joinAPI, "join-api", "", "the core's API URL for --join-token (default: https://HOST:4000 of the first --join when the token carries a fingerprint, else http://HOST:4000; plain HTTP only to loopback)")
	cmd.Flags().StringSliceVar(&joins, "join", nil, "core node address, HOST:PORT or NAME@HOST:PORT (repeat for several cores)")
	cmd.Flags().StringSliceVar(&joinDNS, "join-dns", nil, "DNS name:port resolving to cores (a Kubernetes headless service); re-resolved every 2 s")
	cmd.Flags().StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus metrics on HOST:PORT/metrics (off by default; the worker has no other HTTP endpoint); a bearer token is required")
	cmd.Flags().StringVar(&metricsTok, "metrics-token-file", "", "file holding the bearer token /metrics requires (default: DATA_DIR/metrics-token, generated on first use)")
	cmd.Flags().BoolVar(&metricsPub, "public-metrics", false, "serve the worker's /metrics without a token")
	node.register(cmd, "127.0.0.1:0")
	worker.register(cmd)
	return cmd
}

// joinWithToken enrolls the worker with a one-time join token before its
// node starts: the certificate, its CA and the cookie land in
// DATA_DIR/node-tls. A worker already enrolled ignores the token (logged
// at start), so a restart with the same command line works.
func joinWithToken(ctx context.Context, f *nodeFlags, token, apiURL string, joins []string, dataDir string) error {
	if token == "" || nodes.Enrolled(dataDir) {
		if token != "" {
			fmt.Fprintln(os.Stderr, "edgefaas worker: already joined (DATA_DIR/node-tls); --join-token not used")
		}
		return nil
	}
	host, _, err := net.SplitHostPort(f.addr)
	if err != nil {
		return fmt.Errorf("--node-addr %q: %w", f.addr, err)
	}
	name := f.name
	if name == "" {
		name = "worker@" + host
	}
	if apiURL == "" {
		if len(joins) == 0 {
			return errors.New("--join-token needs --join-api URL (or a --join HOST:PORT to derive it from)")
		}
		p, err := nodes.ParsePeer(joins[0], "core")
		if err != nil {
			return err
		}
		scheme := "http"
		if strings.Contains(token, ".") {
			scheme = "https"
		}
		apiURL = scheme + "://" + net.JoinHostPort(p.Host, "4000")
	}
	if err := nodes.Enroll(ctx, apiURL, token, name, dataDir); err != nil {
		return fmt.Errorf("join with the token: %w", err)
	}
	fmt.Fprintf(os.Stderr, "edgefaas worker: joined as %s; certificate kept in %s\n", name, filepath.Join(dataDir, "node-tls"))
	return nil
}
