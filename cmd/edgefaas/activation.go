package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/http/client"
)

// activationCommand builds `edgefaas activation`: the records of
// invocations.
func activationCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "activation",
		Aliases: []string{"activations", "act"},
		Short:   "Inspect the records of invocations (status, result, logs)",
		Long: `Inspect activation records: every invocation, synchronous or asynchronous,
has one (its id is the X-Edgefaas-Activation header of a synchronous answer,
or what 'fn invoke --async' prints). You see the calls you made and the calls
of functions in modules you own; admins see all.`,
		Example: `  edgefaas activation list --function hello
  edgefaas activation get 01J...
  edgefaas activation logs 01J...
  edgefaas activation result 01J...`,
	}
	group(cmd, activationListCommand(), activationGetCommand(), activationLogsCommand(), activationResultCommand())
	quietUsage(cmd)
	return cmd
}

func activationListCommand() *cobra.Command {
	var f client.ActivationFilter
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List activations, newest first",
		Example: "  edgefaas activation list\n  edgefaas activation list -m tools --function resize --status function_error --limit 5",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			list, err := fetch(cmd, false, func(c *client.Client, ctx context.Context) ([]client.Activation, error) {
				return c.ListActivations(ctx, f)
			})
			if err != nil {
				return apiError(err)
			}
			return printTable(cmd.OutOrStdout(), list, "ID\tFUNCTION\tSTATUS\tDURATION\tWORKER\tQUEUED", func(a client.Activation) string {
				return fmt.Sprintf("%s\t%s/%s\t%s\t%s\t%s\t%s", a.ID, a.Module, a.Function, a.Status,
					time.Duration(a.DurationMS*float64(time.Millisecond)).Round(time.Microsecond), orDash(a.Worker), a.QueuedAt.Local().Format(time.DateTime))
			})
		},
	}
	cmd.Flags().StringVarP(&f.Module, "module", "m", "", "only this module's functions")
	cmd.Flags().StringVar(&f.Function, "function", "", "only this function")
	cmd.Flags().StringVar(&f.Status, "status", "", "only this status (queued, running, success, function_error, runtime_error, timeout, busy, no_worker, lost)")
	cmd.Flags().IntVar(&f.Limit, "limit", 20, "at most this many")
	cmd.Flags().StringVar(&f.Before, "before", "", "only activations older than this id (to page)")
	return cmd
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runOnActivation is the RunE of a verb on the activation args[0]: it
// fetches the record and prints it with show.
func runOnActivation(show func(*cobra.Command, client.Activation) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		a, err := fetchName(cmd, false, (*client.Client).GetActivation, args[0])
		if err != nil {
			return apiError(err)
		}
		return show(cmd, a)
	}
}

func activationGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "get ID",
		Short:   "Print an activation record as JSON",
		Example: "  edgefaas activation get 01JD0Q6ZK4V3T8M4W7R2C9XH5N",
		Args:    cobra.ExactArgs(1),
		RunE: runOnActivation(func(cmd *cobra.Command, a client.Activation) error {
			return printJSON(cmd.OutOrStdout(), a)
		}),
	}
}

func activationLogsCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "logs ID",
		Short:   "Print an activation's log lines",
		Example: "  edgefaas activation logs 01JD0Q6ZK4V3T8M4W7R2C9XH5N",
		Args:    cobra.ExactArgs(1),
		RunE: runOnActivation(func(cmd *cobra.Command, a client.Activation) error {
			if jsonOutput() {
				return printJSON(cmd.OutOrStdout(), a.Logs)
			}
			for _, l := range a.Logs {
				fmt.Fprintln(cmd.OutOrStdout(), l)
			}
			return nil
		}),
	}
}

func activationResultCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "result ID",
		Short:   "Print an activation's JSON result, or fail with its error",
		Example: "  edgefaas activation result 01JD0Q6ZK4V3T8M4W7R2C9XH5N | jq .",
		Long: `Print an activation's JSON result. An activation that is not finished, or
did not succeed, prints its status and error and exits with status 1.`,
		Args: cobra.ExactArgs(1),
		RunE: runOnActivation(func(cmd *cobra.Command, a client.Activation) error {
			if a.Status != "success" {
				if a.Error != "" {
					return fmt.Errorf("activation %s is %s: %s", a.ID, a.Status, a.Error)
				}
				return fmt.Errorf("activation %s is %s", a.ID, a.Status)
			}
			return printRawJSON(cmd.OutOrStdout(), a.Result, !jsonOutput() && isTerminal(cmd.OutOrStdout()))
		}),
	}
}

// fnLogsCommand builds `edgefaas fn logs NAME [--follow]`.
func fnLogsCommand() *cobra.Command {
	var (
		module string
		limit  int
		follow bool
	)
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print the log lines of a function's latest activations",
		Long: `Print the log lines of a function's latest finished activations, oldest
first, each under a header line with its id and status. With --follow, keep
printing new ones as they finish (a long poll on the core).`,
		Example:           "  edgefaas fn logs hello\n  edgefaas fn logs resize -m tools --follow\n  edgefaas fn logs hello -f",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeFunctions,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd, false)
			if err != nil {
				return err
			}
			if _, err := c.GetFunction(cmd.Context(), module, args[0]); err != nil {
				return apiError(err)
			}
			f := client.ActivationFilter{Module: module, Function: args[0], Limit: limit}
			list, err := c.ListActivations(cmd.Context(), f)
			if err != nil {
				return apiError(err)
			}
			printed := map[string]bool{}
			cursor := printLogs(cmd.OutOrStdout(), list, printed)
			if !follow {
				return nil
			}
			for {
				f := client.ActivationFilter{Module: module, Function: args[0], Limit: 1000, After: cursor, Wait: 30 * time.Second}
				if cursor == "" {
					f.After, f.Wait = "", 0
				}
				list, err := c.ListActivations(cmd.Context(), f)
				if cmd.Context().Err() != nil {
					return nil
				}
				if err != nil {
					return apiError(err)
				}
				next := printLogs(cmd.OutOrStdout(), list, printed)
				if next == cursor || next == "" {
					// Only unfinished ones are newer: look again shortly.
					select {
					case <-time.After(250 * time.Millisecond):
					case <-cmd.Context().Done():
						return nil
					}
				}
				if next != "" {
					cursor = next
				}
			}
		},
	}
	moduleFlag(cmd, &module)
	cmd.Flags().IntVar(&limit, "limit", 10, "how many of the latest activations to show first")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing the logs of new activations as they finish")
	return cmd
}

// printLogs prints the finished activations of list (newest first) oldest
// first, skipping those already printed, and returns the newest id below
// which every activation is finished (the cursor to poll after).
func printLogs(w io.Writer, list []client.Activation, printed map[string]bool) string {
	slices.Reverse(list)
	cursor := ""
	blocked := false
	for _, a := range list {
		if !a.Final() {
			blocked = true
			continue
		}
		if !blocked {
			cursor = a.ID
		}
		if printed[a.ID] {
			continue
		}
		printed[a.ID] = true
		head := fmt.Sprintf("== %s %s %s", a.ID, a.Status, a.QueuedAt.Local().Format(time.DateTime))
		if a.Error != "" {
			head += ": " + a.Error
		}
		fmt.Fprintln(w, head)
		if len(a.Logs) > 0 {
			fmt.Fprintln(w, strings.Join(a.Logs, "\n"))
		}
	}
	return cursor
}
