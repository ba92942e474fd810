// Command edgefaas is the one binary of the platform: the core node, the
// worker node, the single-box development platform and the client.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/http/client"
	buildversion "github.com/edgefaas/edgefaas/internal/version"
)

// version is this build's version (internal/version, stamped at build time).
var version = buildversion.Get().Version

func rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "edgefaas",
		Short: "Function-as-a-Service for private edge clouds",
		Long: `edgefaas runs WebAssembly functions on your own machines: a core (API,
storage, scheduling) and workers (run functions), from a server to a
Raspberry Pi. Its HTTP API is FunLess-compatible.`,
		Version:       version,
		SilenceErrors: true,
	}
	root.SetVersionTemplate(versionTemplate)
	root.AddCommand(coreCommand(), workerCommand(), devCommand(), inspectCommand(), compileCommand())
	root.PersistentFlags().StringVar(&globalFlags.context, "context", "", "the config file's context to use (default $"+envContext+", else the current context)")
	root.RegisterFlagCompletionFunc("context", completeContexts)
	root.PersistentFlags().StringVarP(&globalFlags.host, "host", "H", "", "the core's address, or a core group's addresses comma-separated, tried in turn (default $EDGEFAAS_HOST, the config file, else "+client.DefaultHost+")")
	root.PersistentFlags().StringVar(&globalFlags.token, "token", "", "the API token (default $EDGEFAAS_TOKEN, else the config file)")
	root.PersistentFlags().StringVar(&globalFlags.tlsFingerprint, "tls-fingerprint", "", "pin the core's HTTPS certificate by its SHA-256, as the core logs it (default $"+envTLSPin+", else the config file)")
	root.PersistentFlags().StringVar(&globalFlags.caFile, "ca-file", "", "verify the core's HTTPS certificate against this CA, PEM (default $"+envCAFile+", else the config file)")
	root.PersistentFlags().StringVarP(&globalFlags.output, "output", "o", "table", "output format: table or json")
	root.AddCommand(fnCommand(), modCommand(), adminCommand(), nodeCommand(), versionCommand(), doctorCommand(), configCommand(), activationCommand(), scriptCommand())
	return root
}

func main() {
	if err := rootCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "edgefaas:", err)
		os.Exit(1)
	}
}
