package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/http/client"
)

// modCommand builds `edgefaas mod`: FunLess's module verbs.
func modCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "mod",
		Aliases: []string{"module", "modules"},
		Short:   "Create, list, rename and delete modules",
		Long: `Create, list, rename and delete modules. A module groups functions and
belongs to the subject that created it; the default module _ is shared.`,
		Example: `  edgefaas mod create tools
  edgefaas mod list
  edgefaas mod get tools`,
	}
	create := &cobra.Command{
		Use:     "create NAME",
		Short:   "Create a module",
		Example: "  edgefaas mod create tools",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd, false)
			if err != nil {
				return err
			}
			if err := c.CreateModule(cmd.Context(), args[0]); err != nil {
				return apiError(err)
			}
			if jsonOutput() {
				return printJSON(cmd.OutOrStdout(), client.Named{Name: args[0]})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created module %s\n", args[0])
			return nil
		},
	}
	get := &cobra.Command{
		Use:               "get NAME",
		Aliases:           []string{"show"},
		Short:             "Show a module and the names of its functions",
		Example:           "  edgefaas mod get tools\n  edgefaas mod get _ -o json",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeModuleArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := fetchName(cmd, false, (*client.Client).GetModule, args[0])
			if err != nil {
				return apiError(err)
			}
			if jsonOutput() {
				return printJSON(cmd.OutOrStdout(), m)
			}
			tw := newTable(cmd.OutOrStdout())
			fmt.Fprintf(tw, "module:\t%s\n", m.Name)
			fmt.Fprintf(tw, "functions:\t%d\n", len(m.Functions))
			for _, f := range m.Functions {
				fmt.Fprintf(tw, "\t%s\n", f.Name)
			}
			return tw.Flush()
		},
	}
	list := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the modules you can see",
		Example: "  edgefaas mod list\n  edgefaas mod list -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			mods, err := fetch(cmd, false, (*client.Client).ListModules)
			if err != nil {
				return apiError(err)
			}
			return printTable(cmd.OutOrStdout(), mods, "NAME", func(m client.Named) string { return m.Name })
		},
	}
	update := &cobra.Command{
		Use:               "update NAME NEW_NAME",
		Aliases:           []string{"rename"},
		Short:             "Rename a module; its functions move with it",
		Example:           "  edgefaas mod update tools utils",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: completeModuleArg,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd, false)
			if err != nil {
				return err
			}
			if err := c.RenameModule(cmd.Context(), args[0], args[1]); err != nil {
				return apiError(err)
			}
			if jsonOutput() {
				return printJSON(cmd.OutOrStdout(), client.Named{Name: args[1]})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "renamed module %s to %s\n", args[0], args[1])
			return nil
		},
	}
	del := &cobra.Command{
		Use:               "delete NAME",
		Aliases:           []string{"rm"},
		Short:             "Delete a module and every function in it",
		Example:           "  edgefaas mod delete tools",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeModuleArg,
		RunE:              runOnName(false, (*client.Client).DeleteModule, apiError, "deleted module %s"),
	}
	group(cmd, create, get, list, update, del)
	quietUsage(cmd)
	return cmd
}

// completeModuleArg completes the first argument with a module name.
func completeModuleArg(cmd *cobra.Command, args []string, s string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return completeModules(cmd, args, s)
}
