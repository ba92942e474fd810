package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	api "github.com/edgefaas/edgefaas/http"
)

// coreCommand builds `edgefaas core`: the API and storage node.
func coreCommand() *cobra.Command {
	var (
		dataDir        string
		httpAddr       string
		maxUploadBytes int64
	)
	cmd := &cobra.Command{
		Use:   "core",
		Short: "Run the core node: the HTTP API and the function store",
		Long: `Run the core node: FunLess's REST API v1 and the function store.

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
			logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, os.Interrupt)
			defer stop()
			return api.RunCore(ctx, api.CoreConfig{
				DataDir:        dataDir,
				HTTPAddr:       httpAddr,
				MaxUploadBytes: maxUploadBytes,
				Logger:         logger,
			})
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", defaultDataDir(), "directory for the database and the tokens file")
	cmd.Flags().StringVar(&httpAddr, "http-addr", "127.0.0.1:4000", "address the HTTP API listens on")
	cmd.Flags().Int64Var(&maxUploadBytes, "max-upload-bytes", api.DefaultMaxUploadBytes, "largest accepted function code, in bytes (larger uploads get 413)")
	return cmd
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
