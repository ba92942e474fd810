package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/http/client"
)

// scriptCommand builds `edgefaas script`: FunLess's APP scheduling scripts.
func scriptCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "script",
		Aliases: []string{"scripts", "app"},
		Short:   "Create, list, show and delete APP scheduling scripts",
		Long: `Create, list, show and delete APP scripts: FunLess's placement language.
A script maps function tags (metadata "tag") to blocks of workers tried in
order; invoke with 'fn invoke --script NAME' (the body's
"scheduling":{"language":"app","script":NAME}). Scripts of admins are shared
with every subject; others' are private to their owner.`,
		Example: `  edgefaas script create edge placement.yml
  edgefaas script list
  edgefaas script get edge
  edgefaas script delete edge`,
	}
	create := &cobra.Command{
		Use:     "create NAME FILE.yml",
		Short:   "Upload an APP script (FILE - reads standard input)",
		Example: "  edgefaas script create edge placement.yml",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var src []byte
			var err error
			if args[1] == "-" {
				src, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
			} else {
				src, err = os.ReadFile(args[1])
			}
			if err != nil {
				return fmt.Errorf("read the script: %w", err)
			}
			c, err := newClient(cmd, false)
			if err != nil {
				return err
			}
			sc, err := c.CreateScript(cmd.Context(), args[0], src)
			if err != nil {
				return apiError(err)
			}
			if jsonOutput() {
				return printJSON(cmd.OutOrStdout(), sc)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created APP script %s (id %d)\n", sc.Name, sc.ID)
			return nil
		},
	}
	get := &cobra.Command{
		Use:     "get NAME",
		Aliases: []string{"show"},
		Short:   "Show an APP script: its YAML, or with -o json the parsed form",
		Example: "  edgefaas script get edge\n  edgefaas script get edge -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc, err := fetchName(cmd, false, (*client.Client).GetScript, args[0])
			if err != nil {
				return apiError(err)
			}
			if jsonOutput() {
				return printJSON(cmd.OutOrStdout(), sc)
			}
			out := cmd.OutOrStdout()
			tw := newTable(out)
			fmt.Fprintf(tw, "script:\t%s\n", sc.Name)
			fmt.Fprintf(tw, "id:\t%d\n", sc.ID)
			fmt.Fprintf(tw, "owner:\t%s\n", sc.Owner)
			fmt.Fprintf(tw, "shared:\t%v\n", sc.Shared)
			if err := tw.Flush(); err != nil {
				return err
			}
			if sc.Source != "" {
				fmt.Fprintf(out, "\n%s", sc.Source)
				if !bytes.HasSuffix([]byte(sc.Source), []byte("\n")) {
					fmt.Fprintln(out)
				}
				return nil
			}
			var pretty bytes.Buffer
			if json.Indent(&pretty, sc.Script, "", "  ") == nil {
				fmt.Fprintf(out, "\n%s\n", pretty.String())
			}
			return nil
		},
	}
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the APP scripts you can see",
		Example: "  edgefaas script list\n  edgefaas script list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			all, err := fetch(cmd, false, (*client.Client).ListScripts)
			if err != nil {
				return apiError(err)
			}
			return printTable(cmd.OutOrStdout(), all, "NAME\tID\tOWNER\tSHARED", func(sc client.Script) string {
				return fmt.Sprintf("%s\t%d\t%s\t%v", sc.Name, sc.ID, sc.Owner, sc.Shared)
			})
		},
	}
	del := &cobra.Command{
		Use:     "delete NAME",
		Aliases: []string{"rm"},
		Short:   "Delete an APP script",
		Example: "  edgefaas script delete edge",
		Args:    cobra.ExactArgs(1),
		RunE:    runOnName(false, (*client.Client).DeleteScript, apiError, "deleted APP script %s"),
	}
	group(cmd, create, get, list, del)
	quietUsage(cmd)
	return cmd
}
