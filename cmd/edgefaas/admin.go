package main

import (
	"fmt"

	"github.com/spf13/cobra"
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
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	sub := &cobra.Command{
		Use:     "subject",
		Aliases: []string{"subjects", "sub"},
		Short:   "Create, list, rotate and revoke subjects (users and their tokens)",
		Example: "  edgefaas admin subject create alice\n  edgefaas admin subject rotate alice\n  edgefaas admin subject revoke alice",
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a subject and print its token",
		Long: `Create a (non-admin) subject and print its token. The token is shown only
once: hand it to the subject, who can save it with 'edgefaas config set token'.`,
		Example: "  edgefaas admin subject create alice\n  TOKEN=$(edgefaas admin subject create ci -o json | jq -r .token)",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd, true)
			if err != nil {
				return err
			}
			cr, err := c.CreateSubject(cmd.Context(), args[0])
			if err != nil {
				return apiError(err)
			}
			if jsonOutput() {
				return printJSON(cmd.OutOrStdout(), cr)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "created subject %s; its token (shown only once):\n", cr.Name)
			fmt.Fprintln(cmd.OutOrStdout(), cr.Token)
			return nil
		},
	}
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the subjects",
		Example: "  edgefaas admin subject list\n  edgefaas admin subject list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd, true)
			if err != nil {
				return err
			}
			subs, err := c.ListSubjects(cmd.Context())
			if err != nil {
				return apiError(err)
			}
			if jsonOutput() {
				return printJSON(cmd.OutOrStdout(), subs)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintln(tw, "NAME\tROLE\tSTATUS")
			for _, s := range subs {
				role, status := "user", "active"
				if s.Admin {
					role = "admin"
				}
				if s.Revoked {
					status = "revoked"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, role, status)
			}
			return tw.Flush()
		},
	}
	rotate := &cobra.Command{
		Use:     "rotate NAME",
		Short:   "Issue a new token for a subject (the old one stops working) and print it",
		Example: "  edgefaas admin subject rotate alice",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd, true)
			if err != nil {
				return err
			}
			cr, err := c.RotateSubject(cmd.Context(), args[0])
			if err != nil {
				return apiError(err)
			}
			if jsonOutput() {
				return printJSON(cmd.OutOrStdout(), cr)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "new token for subject %s (shown only once):\n", cr.Name)
			fmt.Fprintln(cmd.OutOrStdout(), cr.Token)
			return nil
		},
	}
	revoke := &cobra.Command{
		Use:     "revoke NAME",
		Short:   "Revoke a subject's token (rotate issues a new one)",
		Example: "  edgefaas admin subject revoke alice",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd, true)
			if err != nil {
				return err
			}
			if err := c.RevokeSubject(cmd.Context(), args[0]); err != nil {
				return apiError(err)
			}
			if !jsonOutput() {
				fmt.Fprintf(cmd.OutOrStdout(), "revoked subject %s\n", args[0])
			}
			return nil
		},
	}
	sub.AddCommand(create, list, rotate, revoke)
	cmd.AddCommand(sub)
	quietUsage(cmd)
	return cmd
}
