package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/internal/core"
	"github.com/edgefaas/edgefaas/internal/core/api"
	"github.com/edgefaas/edgefaas/internal/core/cluster"
	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/membudget"
	"github.com/edgefaas/edgefaas/internal/nodes"
)

// devCommand builds `edgefaas dev`: the whole platform in one process, on
// one ergo node, for a laptop or a single-box edge site.
func devCommand() *cobra.Command {
	var (
		dataDir  string
		httpAddr string
		node     nodeFlags
		worker   workerFlags
		trig     triggerFlags
		apiTLS   apiTLSFlags
		tlsPin   string
		sinkOpts sinkFlags
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a core and a worker in one process (local development)",
		Long: `Run the whole platform in one process: the core and a worker share one ergo
node, so invocations cross no network hop. It prints the API address and
where the tokens are, and writes the API host and the guest token to the
client configuration as the context dev, which becomes current when no
context is current (then 'edgefaas fn ...' works at once; else add
--context dev: a saved site stays the current context). In this mode
functions may grant themselves any public host (--egress-allow '*'), but no
internal address is open: loopback holds the API, pprof and the node port.
Open a local test server's port with --allow-net 127.0.0.1:PORT.`,
		Example: `  edgefaas dev
  edgefaas dev --data-dir /tmp/edge --http-addr 127.0.0.1:8080
  edgefaas dev --allow-net 127.0.0.1:9000   # the network example may call a server on :9000`,
		Args:    cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error { return flagsFromEnv(cmd.Flags()) },
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SilenceUsage = true
			st, err := startNode(&node, &worker, dataDir, membudget.SingleBox)
			if err != nil {
				return err
			}
			logger, wcfg := st.log, st.worker
			if !cmd.Flags().Changed("egress-allow") {
				wcfg.Egress.Grantable = []string{"*"}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return core.Run(ctx, core.Config{
				DataDir:     dataDir,
				HTTPAddr:    httpAddr,
				Logger:      logger,
				TLS:         api.TLSMode(apiTLS.mode),
				TLSCertFile: apiTLS.cert,
				TLSKeyFile:  apiTLS.key,
				ServingTLS:  func(fp string) { tlsPin = fp },
				Inspect:     uploadInspector(st.split.ValidatorConcurrency),
				Storage:     storageOptions(st.split),
				BodyBudget:  bodyBudget(st.split),
				Triggers:    trig.config(wcfg.Egress),
				Sinks:       sinkOpts.config(wcfg.Egress),
				Cluster: func(store *storage.Store, _ storage.NodeRecords) (cluster.Cluster, error) {
					return nodes.StartCore(nodes.CoreConfig{Node: st.node, Store: store, WithWorker: &wcfg})
				},
				Listening: func(addr net.Addr) {
					url := "http://" + addr.String()
					if tlsPin != "" {
						url = "https://" + addr.String()
					}
					tokens := filepath.Join(dataDir, storage.TokensFileName)
					msg := fmt.Sprintf("edgefaas dev: API at %s, tokens in %s", url, tokens)
					if guest := readToken(tokens, "Guest"); guest != "" {
						switch current, err := writeDevConfig(url, guest, tlsPin); {
						case err != nil:
							logger.Warn("could not write the client configuration", "err", err)
						case current == devContext:
							msg += "\nclient context " + devContext + " (current) has this address and the guest token"
						default:
							msg += "\nclient context " + devContext + " has this address and the guest token; the current context stays " + current +
								": use --context " + devContext + " or 'edgefaas config use-context " + devContext + "'"
						}
					}
					fmt.Fprintln(os.Stderr, msg)
				},
			})
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", filepath.Join(filepath.Dir(defaultDataDir()), "dev"), "directory for the database, tokens, cookie and compiled code")
	cmd.Flags().StringVar(&httpAddr, "http-addr", "127.0.0.1:4000", "address the HTTP API listens on")
	apiTLS.register(cmd)
	node.register(cmd, "127.0.0.1:0")
	worker.register(cmd)
	trig.register(cmd)
	sinkOpts.register(cmd)
	return cmd
}

// readToken reads NAME=<token> from a tokens file.
func readToken(path, name string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+"="); ok {
			return v
		}
	}
	return ""
}
