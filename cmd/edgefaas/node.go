package main

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/http/client"
)

// nodeAddress is name@host:port.
var nodeAddress = regexp.MustCompile(`^[^@\s]+@[^@\s:]+:[0-9]{1,5}$|^[^@\s]+@\[[0-9a-fA-F:.]+\]:[0-9]{1,5}$`)

// nodeCommand builds `edgefaas node`: the workers the core knows.
func nodeCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "node",
		Aliases: []string{"nodes", "worker", "workers"},
		Short:   "List the workers and attach new ones",
		Example: "  edgefaas node list\n  edgefaas node connect worker@10.0.0.7:4001",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the workers: architecture, memory (in use, budget, reserved, free), load, cached functions",
		Example: "  edgefaas node list\n  edgefaas node list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd, false)
			if err != nil {
				return err
			}
			nodes, err := c.ListNodes(cmd.Context())
			if err != nil {
				return nodeAPIError(err)
			}
			if jsonOutput() {
				return printJSON(cmd.OutOrStdout(), nodes)
			}
			if len(nodes) == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "no worker is connected; start one with 'edgefaas worker' or attach one with 'edgefaas node connect'")
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "NAME\tPLATFORM\tMEMORY (IN USE / BUDGET)\tRESERVED\tFREE FOR FUNCTIONS\tLOAD\tRUNNING\tQUEUED\tFUNCTIONS")
			for _, n := range nodes {
				shown := fmt.Sprintf("%d compiled", len(n.Functions))
				mem := "-"
				if n.MemoryBudget > 0 {
					mem = humanBytes(n.MemoryInUse) + " / " + humanBytes(n.MemoryBudget)
				}
				free := humanBytes(n.FreeMemory)
				if n.TotalMemory > 0 {
					free += " / " + humanBytes(n.TotalMemory)
				}
				fmt.Fprintf(tw, "%s\t%s/%s\t%s\t%s\t%s\t%.2f\t%d/%d\t%d\t%s\n", n.Name, n.OS, n.Arch, mem, humanBytes(n.MemoryReserved), free, n.Load, n.Running, n.MaxRunning, n.Queued, shown)
			}
			return tw.Flush()
		},
	}
	connect := &cobra.Command{
		Use:   "connect NAME@HOST:PORT",
		Short: "Attach a worker by its address (when discovery cannot find it)",
		Long: `Ask the core to attach the worker listening at HOST:PORT under NAME, for
networks where automatic discovery does not reach it. Needs an admin token.`,
		Example: "  edgefaas node connect worker@10.0.0.7:4001\n  edgefaas node connect pi@[fd00::7]:4001",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !nodeAddress.MatchString(args[0]) {
				return fmt.Errorf("%q is not a node address: write it NAME@HOST:PORT, e.g. worker@10.0.0.7:4001", args[0])
			}
			c, err := newClient(cmd, true)
			if err != nil {
				return err
			}
			accepted, err := c.ConnectNode(cmd.Context(), args[0])
			if err != nil {
				return nodeAPIError(err)
			}
			if jsonOutput() {
				return printJSON(cmd.OutOrStdout(), map[string]any{"address": args[0], "accepted": accepted})
			}
			if accepted {
				fmt.Fprintf(cmd.OutOrStdout(), "connecting to %s; check with 'edgefaas node list'\n", args[0])
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "connected %s\n", args[0])
			}
			return nil
		},
	}
	cmd.AddCommand(list, connect)
	quietUsage(cmd)
	return cmd
}

// nodeAPIError explains a 404 from a core that predates the node API.
func nodeAPIError(err error) error {
	var ae *client.Error
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound && strings.HasPrefix(ae.Detail, "Not Found: no endpoint") {
		return fmt.Errorf("this core has no node API (%s); upgrade it to a version with workers", ae.Detail)
	}
	return apiError(err)
}
