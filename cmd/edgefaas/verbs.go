package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/http/client"
)

// The shapes the client verbs share: a command that only groups verbs, a
// call to the API with the command's client, a list printed as JSON or as
// a table, and a verb that acts on one name and says what it did.

// group makes cmd a command that only groups subs: it takes no arguments
// and prints its help.
func group(cmd *cobra.Command, subs ...*cobra.Command) *cobra.Command {
	cmd.Args = cobra.NoArgs
	cmd.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	cmd.AddCommand(subs...)
	return cmd
}

// fetch calls get with the command's API client (with the admin token if
// admin) and context. An error is returned as it is, for apiError or
// nodeAPIError to explain (they leave newClient's errors unchanged).
func fetch[T any](cmd *cobra.Command, admin bool, get func(*client.Client, context.Context) (T, error)) (T, error) {
	c, err := newClient(cmd, admin)
	if err != nil {
		var zero T
		return zero, err
	}
	return get(c, cmd.Context())
}

// fetchName is fetch for a call on one name.
func fetchName[T any](cmd *cobra.Command, admin bool, get func(*client.Client, context.Context, string) (T, error), name string) (T, error) {
	return fetch(cmd, admin, func(c *client.Client, ctx context.Context) (T, error) { return get(c, ctx, name) })
}

// printTable prints items as JSON with -o json, else as an aligned table:
// the header line, then row's line for each item.
func printTable[T any](w io.Writer, items []T, header string, row func(T) string) error {
	if jsonOutput() {
		return printJSON(w, items)
	}
	tw := newTable(w)
	fmt.Fprintln(tw, header)
	for _, it := range items {
		fmt.Fprintln(tw, row(it))
	}
	return tw.Flush()
}

// runOnName is the RunE of a verb whose argument is a name: it calls act
// with the command's API client (with the admin token if admin) on the
// name, explains an error with explain and, unless -o json, prints done (a
// format for the name).
func runOnName(admin bool, act func(*client.Client, context.Context, string) error, explain func(error) error, done string) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := newClient(cmd, admin)
		if err != nil {
			return err
		}
		if err := act(c, cmd.Context(), args[0]); err != nil {
			return explain(err)
		}
		if !jsonOutput() {
			fmt.Fprintf(cmd.OutOrStdout(), done+"\n", args[0])
		}
		return nil
	}
}
