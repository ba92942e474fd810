package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/http/client"
	buildversion "github.com/edgefaas/edgefaas/internal/version"
)

// versionTemplate is `edgefaas --version`: the version and the build.
var versionTemplate = func() string {
	i := buildversion.Get()
	return fmt.Sprintf("edgefaas %s (commit %s, %s, %s/%s)\n", i.Version, orDash(i.Commit), i.GoVersion, i.OS, i.Arch)
}()

// versionView is `edgefaas version -o json`.
type versionView struct {
	Client    buildversion.Info   `json:"client"`
	Core      *client.CoreVersion `json:"core,omitempty"`
	CoreError string              `json:"core_error,omitempty"`
}

// versionCommand builds `edgefaas version`: the client's build, and the
// core's when it answers. An unreachable core is reported on the core's
// line; the exit status is non-zero only with --require-core.
func versionCommand() *cobra.Command {
	var requireCore bool
	cmd := &cobra.Command{
		Use:     "version",
		Short:   "Show the client's and the core's versions and builds",
		Example: "  edgefaas version\n  edgefaas version -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := versionView{Client: buildversion.Get()}
			var coreErr error
			c, err := newClient(cmd, false)
			if err == nil {
				ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
				defer cancel()
				var v client.CoreVersion
				if v, err = c.Version(ctx); err == nil {
					out.Core = &v
				}
			}
			if err != nil {
				coreErr = apiError(err)
				out.CoreError = coreErr.Error()
			}
			w := cmd.OutOrStdout()
			if jsonOutput() {
				if err := printJSON(w, out); err != nil {
					return err
				}
			} else {
				i := out.Client
				fmt.Fprintf(w, "client: %s (commit %s, %s, %s/%s)\n", i.Version, orDash(i.Commit), i.GoVersion, i.OS, i.Arch)
				if out.Core != nil {
					v := out.Core
					fmt.Fprintf(w, "core:   %s (commit %s, %s, %s/%s)\n", v.Version, orDash(v.Commit), v.Go, v.OS, v.Arch)
				} else {
					fmt.Fprintf(w, "core:   unknown: %s\n", out.CoreError)
				}
			}
			if requireCore && coreErr != nil {
				return coreErr
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&requireCore, "require-core", false, "exit non-zero when the core's version cannot be read")
	quietUsage(cmd)
	return cmd
}
