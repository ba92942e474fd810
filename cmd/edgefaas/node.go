package main

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

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
	}
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the workers: architecture, memory (in use, budget, reserved, free), load, cached functions",
		Example: "  edgefaas node list\n  edgefaas node list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nodes, err := fetch(cmd, false, (*client.Client).ListNodes)
			if err != nil {
				return nodeAPIError(err)
			}
			if len(nodes) == 0 && !jsonOutput() {
				fmt.Fprintln(cmd.ErrOrStderr(), "no worker is connected; start one with 'edgefaas worker' or attach one with 'edgefaas node connect'")
			}
			const header = "NAME\tVERSION\tPLATFORM\tMEMORY (IN USE / BUDGET)\tRESERVED\tFREE FOR FUNCTIONS\tLOAD\tRUNNING\tQUEUED\tFUNCTIONS"
			return printTable(cmd.OutOrStdout(), nodes, header, func(n client.Node) string {
				shown := fmt.Sprintf("%d compiled", len(n.Functions))
				mem := "-"
				if n.MemoryBudget > 0 {
					mem = humanBytes(n.MemoryInUse) + " / " + humanBytes(n.MemoryBudget)
				}
				free := humanBytes(n.FreeMemory)
				if n.TotalMemory > 0 {
					free += " / " + humanBytes(n.TotalMemory)
				}
				return fmt.Sprintf("%s\t%s\t%s/%s\t%s\t%s\t%s\t%.2f\t%d/%d\t%d\t%s", n.Name, orDash(n.Version), n.OS, n.Arch, mem, humanBytes(n.MemoryReserved), free, n.Load, n.Running, n.MaxRunning, n.Queued, shown)
			})
		},
	}
	cores := &cobra.Command{
		Use:     "cores",
		Aliases: []string{"group"},
		Short:   "List the cores of the core group: role, term, commit and applied index, lag, newest snapshot",
		Example: "  edgefaas node cores\n  edgefaas node cores -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ms, err := fetch(cmd, true, (*client.Client).GroupMembers)
			if err != nil {
				return err
			}
			if len(ms) == 0 && !jsonOutput() {
				fmt.Fprintln(cmd.ErrOrStderr(), "this core is not a member of a core group (edgefaas core --group-addr)")
			}
			const header = "ID\tROLE\tTERM\tCOMMIT\tAPPLIED\tLAG\tSNAPSHOT\tLEADER\tNOTE"
			return printTable(cmd.OutOrStdout(), ms, header, func(m client.GroupMember) string {
				note := m.Error
				if m.Self {
					note = "this core"
				}
				return fmt.Sprintf("%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s", m.ID, m.Role, m.Term, m.CommitIndex, m.AppliedIndex, m.Lag, m.SnapshotIndex, orDash(m.Leader), orDash(note))
			})
		},
	}
	removeCore := &cobra.Command{
		Use:   "remove-core ID",
		Short: "Remove a core from the core group (its ID is its --group-addr, as 'node cores' lists it)",
		Long: `Remove a core from the core group: the group stops counting it in its
majority (remove a box that is gone for good, before a replacement joins).
Any core of the group takes the request and passes it to the leader.`,
		Example: "  edgefaas node remove-core 10.0.0.3:4002",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd, true)
			if err != nil {
				return err
			}
			if err := c.RemoveGroupMember(cmd.Context(), args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %s from the core group\n", args[0])
			return nil
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
	group(cmd, list, cores, removeCore, connect, nodeTokenCommand(), nodeRevokeCommand(), nodeRotateCommand(), nodeCertsCommand())
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

// nodeTokenCommand builds `edgefaas node token create`: a one-time join
// token for a worker (`edgefaas worker --join-token`).
func nodeTokenCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "token",
		Short:   "Create one-time join tokens for workers",
		Example: "  edgefaas node token create --ttl 30m",
	}
	var ttl time.Duration
	var name string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a one-time join token and print it",
		Long: `Create a one-time join token (admin token). A worker started with
--join-token TOKEN --join-api URL exchanges it, once, for a certificate
from the core's CA naming the worker, and keeps that certificate (and the
cluster cookie) in its data directory. The token is stored hashed, is
shown only once, and expires after --ttl if unused. When the core's API
serves HTTPS, the token ends in .FINGERPRINT: the worker pins the core's
certificate with it.`,
		Example: "  edgefaas node token create\n  edgefaas node token create --ttl 10m --node worker@10.0.0.7",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd, true)
			if err != nil {
				return err
			}
			jt, err := c.CreateJoinToken(cmd.Context(), ttl, name)
			if err != nil {
				return nodeAPIError(err)
			}
			if jsonOutput() {
				return printJSON(cmd.OutOrStdout(), jt)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "one-time join token (shown only once; expires %s):\n", jt.ExpiresAt.Format(time.RFC3339))
			fmt.Fprintln(cmd.OutOrStdout(), jt.Token)
			return nil
		},
	}
	create.Flags().DurationVar(&ttl, "ttl", time.Hour, "how long the token stays valid if unused (at most 720h)")
	create.Flags().StringVar(&name, "node", "", "the only node name the token may enroll (default: any)")
	return group(cmd, create)
}

func nodeRevokeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Refuse a token-joined worker's certificate from now on and drop its link",
		Long: `Revoke a worker that joined with a token (admin token): the core refuses
its certificate from now on (recorded in the core's database), drops its
link at once, and schedules nothing more on it. To let it back, create a
new join token and start it with that token on a fresh data directory.`,
		Example: "  edgefaas node revoke worker@10.0.0.7",
		Args:    cobra.ExactArgs(1),
		RunE:    runOnName(true, (*client.Client).RevokeNode, nodeAPIError, "revoked %s"),
	}
}

func nodeRotateCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate NAME",
		Short: "Issue a token-joined worker a new certificate (the old one is refused once it uses the new one)",
		Long: `Rotate a worker's certificate (admin token): the core issues a new key and
certificate and sends them to the worker over its live link; the worker
keeps them in its data directory and presents them from its next
connection, after which the core refuses the old certificate. The running
link is kept, so invocations continue.`,
		Example: "  edgefaas node rotate worker@10.0.0.7",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			serial, err := fetchName(cmd, true, (*client.Client).RotateNode, args[0])
			if err != nil {
				return nodeAPIError(err)
			}
			if jsonOutput() {
				return printJSON(cmd.OutOrStdout(), map[string]string{"node": args[0], "serial": serial})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "rotated %s: new certificate %s\n", args[0], serial)
			return nil
		},
	}
}

func nodeCertsCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "certs",
		Aliases: []string{"certificates"},
		Short:   "List the workers that joined with a token: certificate serial, rotation, revocation",
		Example: "  edgefaas node certs\n  edgefaas node certs -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			certs, err := fetch(cmd, true, (*client.Client).ListNodeCerts)
			if err != nil {
				return nodeAPIError(err)
			}
			return printTable(cmd.OutOrStdout(), certs, "NODE\tSERIAL\tISSUED\tSTATUS", func(nc client.NodeCert) string {
				status := "active"
				switch {
				case nc.Revoked:
					status = "revoked"
				case nc.Rotating:
					status = "rotating"
				}
				return fmt.Sprintf("%s\t%s\t%s\t%s", nc.Node, nc.Serial, nc.IssuedAt.Format(time.RFC3339), status)
			})
		},
	}
}
