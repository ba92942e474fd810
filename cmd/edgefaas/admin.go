package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/http/client"
)

// adminCommand builds `edgefaas admin`: subject management (admin token).
func adminCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Administer the platform (needs an admin token)",
		Long: `Administer the platform. These commands use the admin token: --token,
else EDGEFAAS_ADMIN_TOKEN, else EDGEFAAS_TOKEN, else admin_token from the
config file, else token.`,
		Example: "  edgefaas admin subject create alice\n  edgefaas admin subject list",
	}
	sub := &cobra.Command{
		Use:     "subject",
		Aliases: []string{"subjects", "sub"},
		Short:   "Create, list, rotate and revoke subjects (users and their tokens)",
		Example: "  edgefaas admin subject create alice\n  edgefaas admin subject rotate alice\n  edgefaas admin subject revoke alice",
	}
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a subject and print its token",
		Long: `Create a (non-admin) subject and print its token. The token is shown only
once: hand it to the subject, who can save it with 'edgefaas config set token'.`,
		Example: "  edgefaas admin subject create alice\n  TOKEN=$(edgefaas admin subject create ci -o json | jq -r .token)",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return printNewToken(cmd, (*client.Client).CreateSubject, args[0], "created subject %s; its token (shown only once):")
		},
	}
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the subjects",
		Example: "  edgefaas admin subject list\n  edgefaas admin subject list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			subs, err := fetch(cmd, true, (*client.Client).ListSubjects)
			if err != nil {
				return apiError(err)
			}
			return printTable(cmd.OutOrStdout(), subs, "NAME\tROLE\tSTATUS", func(s client.Subject) string {
				role, status := "user", "active"
				if s.Admin {
					role = "admin"
				}
				if s.Revoked {
					status = "revoked"
				}
				return fmt.Sprintf("%s\t%s\t%s", s.Name, role, status)
			})
		},
	}
	rotate := &cobra.Command{
		Use:     "rotate NAME",
		Short:   "Issue a new token for a subject (the old one stops working) and print it",
		Example: "  edgefaas admin subject rotate alice",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return printNewToken(cmd, (*client.Client).RotateSubject, args[0], "new token for subject %s (shown only once):")
		},
	}
	revoke := &cobra.Command{
		Use:     "revoke NAME",
		Short:   "Revoke a subject's token (rotate issues a new one)",
		Example: "  edgefaas admin subject revoke alice",
		Args:    cobra.ExactArgs(1),
		RunE:    runOnName(true, (*client.Client).RevokeSubject, apiError, "revoked subject %s"),
	}
	group(sub, create, list, rotate, revoke, subjectEgressCommand(), subjectQuotaCommand())
	rotateKey := &cobra.Command{
		Use:   "rotate-secrets-key",
		Short: "Seal the secrets the core keeps at rest under a new key",
		Long: `Seal the secrets the core keeps at rest (sink passwords, webhook secrets,
header values, URL queries, MQTT trigger passwords) under a new key: the core
writes the new key in front of the old one in its key file, seals every
record under it, then drops the old key. In a core group every core takes the
new key through the group's log and keeps the old ones (the log may hold
entries sealed under them). Back the key file up afterwards.`,
		Example: "  edgefaas admin rotate-secrets-key",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rot, err := fetch(cmd, true, (*client.Client).RotateSecretsKey)
			if err != nil {
				return apiError(err)
			}
			if jsonOutput() {
				return printJSON(cmd.OutOrStdout(), rot)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "secrets key %s now seals; %d records sealed again\n", rot.KeyID, rot.Resealed)
			return nil
		},
	}
	group(cmd, sub, rotateKey)
	quietUsage(cmd)
	return cmd
}

// printNewToken calls issue (which creates a subject or rotates its token)
// on name with the admin token and prints the new token on standard
// output, after notice (a format for the subject's name) on standard error;
// with -o json, the credentials.
func printNewToken(cmd *cobra.Command, issue func(*client.Client, context.Context, string) (client.Credentials, error), name, notice string) error {
	cr, err := fetchName(cmd, true, issue, name)
	if err != nil {
		return apiError(err)
	}
	if jsonOutput() {
		return printJSON(cmd.OutOrStdout(), cr)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), notice+"\n", cr.Name)
	fmt.Fprintln(cmd.OutOrStdout(), cr.Token)
	return nil
}

// subjectEgressCommand builds `edgefaas admin subject egress`: the
// operator's bound on what one subject's functions may grant themselves in
// allowed_hosts (and where callbacks on its behalf may go).
func subjectEgressCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "egress",
		Short: "Bound the hosts one subject's functions may reach (set, show, clear)",
		Long: `A function reaches a host granted in its allowed_hosts only if the host is
also within what the operator permits: the worker's --egress-allow for every
tenant and, once set, the subject's own bound (this command). The bound
takes effect at the next invocation, without a restart. An empty 'set'
permits nothing; 'clear' leaves the subject bounded by --egress-allow only.`,
		Example: "  edgefaas admin subject egress set alice api.example.com:443 '*.alice.example'\n  edgefaas admin subject egress show alice\n  edgefaas admin subject egress clear alice",
	}
	print := func(cmd *cobra.Command, b client.EgressBound) error {
		if jsonOutput() {
			return printJSON(cmd.OutOrStdout(), b)
		}
		switch {
		case !b.Bounded:
			fmt.Fprintf(cmd.OutOrStdout(), "%s: no bound (the workers' --egress-allow alone)\n", b.Subject)
		case len(b.Hosts) == 0:
			fmt.Fprintf(cmd.OutOrStdout(), "%s: nothing permitted\n", b.Subject)
		default:
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", b.Subject, strings.Join(b.Hosts, " "))
		}
		return nil
	}
	set := &cobra.Command{
		Use:     "set NAME [HOST[:PORT]|*.DOMAIN|*]...",
		Short:   "Set the hosts a subject's functions may grant themselves (none: nothing)",
		Example: "  edgefaas admin subject egress set alice api.example.com:443",
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := fetch(cmd, true, func(c *client.Client, ctx context.Context) (client.EgressBound, error) {
				return c.SetSubjectEgress(ctx, args[0], args[1:])
			})
			if err != nil {
				return apiError(err)
			}
			return print(cmd, b)
		},
	}
	show := &cobra.Command{
		Use:     "show NAME",
		Aliases: []string{"get"},
		Short:   "Show a subject's egress bound",
		Example: "  edgefaas admin subject egress show alice\n  edgefaas admin subject egress show alice -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := fetchName(cmd, true, (*client.Client).SubjectEgress, args[0])
			if err != nil {
				return apiError(err)
			}
			return print(cmd, b)
		},
	}
	clear := &cobra.Command{
		Use:     "clear NAME",
		Aliases: []string{"unset"},
		Short:   "Remove a subject's bound (the workers' --egress-allow alone applies)",
		Example: "  edgefaas admin subject egress clear alice",
		Args:    cobra.ExactArgs(1),
		RunE:    runOnName(true, (*client.Client).ClearSubjectEgress, apiError, "%s: bound cleared"),
	}
	return group(cmd, set, show, clear)
}
