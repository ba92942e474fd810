package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/http/client"
)

// configCommand builds `edgefaas config`.
func configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show or change the client's settings (contexts: core address, tokens)",
		Long: `Show or change the client's settings, kept in
$XDG_CONFIG_HOME/edgefaas/config.json (else ~/.config/edgefaas/config.json),
readable only by you (mode 0600).

The file holds named contexts, one per platform (a site, a laptop's
'edgefaas dev'), and which of them is current. A command uses --context
NAME, else $EDGEFAAS_CONTEXT, else the current context.

Keys of a context:
  host             ` + configKeys["host"] + `
  token            ` + configKeys["token"] + `
  admin_token      ` + configKeys["admin_token"] + `
  tls_fingerprint  ` + configKeys["tls_fingerprint"] + `
  ca_file          ` + configKeys["ca_file"] + `

Precedence: the flags --host, --token, --tls-fingerprint and --ca-file win
over the environment (EDGEFAAS_HOST, EDGEFAAS_TOKEN, EDGEFAAS_ADMIN_TOKEN for
admin commands, EDGEFAAS_TLS_FINGERPRINT, EDGEFAAS_CA_FILE), which wins over
the chosen context. 'edgefaas dev' writes the context dev (host, guest token,
and the fingerprint when it serves HTTPS) and makes it current only when no
context is current.`,
		Example: `  edgefaas config set-context site --host https://10.0.0.2:4000 --token "$TOKEN"
  edgefaas config set-context group --host http://10.0.0.1:4000,http://10.0.0.2:4000,http://10.0.0.3:4000
  edgefaas config use-context site
  edgefaas config get-contexts
  edgefaas fn list --context dev
  edgefaas config set tls_fingerprint 3b1f…  # the current context; from the core's log: "API TLS: ... fingerprint="
  edgefaas config get host`,
	}
	group(cmd, configSetCommand(), configGetCommand(), configUnsetCommand(),
		getContextsCommand(), currentContextCommand(), useContextCommand(), setContextCommand(), deleteContextCommand())
	quietUsage(cmd)
	return cmd
}

// normalizeHost checks a core address, or the comma-separated addresses
// of a core group's cores, and writes them in full.
func normalizeHost(v string) (string, error) {
	us, err := client.ParseHosts(strings.TrimSpace(v))
	if err != nil {
		return "", err
	}
	s := make([]string, len(us))
	for i, u := range us {
		s[i] = u.String()
	}
	return strings.Join(s, ","), nil
}

// saved tells the user where a change went, unless -o json.
func saved(w io.Writer, format string, args ...any) {
	if globalFlags.output != "json" {
		fmt.Fprintf(w, format+"\n", args...)
	}
}

func configSetCommand() *cobra.Command {
	set := &cobra.Command{
		Use:   "set KEY VALUE",
		Short: "Set a setting of the current context (or of --context NAME)",
		Long: `Set a setting of the current context, or of the context --context names
(created if it does not exist). With no context at all, it creates the
context default and makes it current.`,
		Example:   "  edgefaas config set host http://127.0.0.1:4000\n  edgefaas config set admin_token 3f2c…\n  edgefaas config set --context site token 9a1e…",
		Args:      cobra.ExactArgs(2),
		ValidArgs: sortedKeys(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := loadConfig()
			if err != nil {
				return err
			}
			name := contextChoice(cmd, c)
			if name == "" {
				name = defaultContext
			}
			if err := checkContextName(name); err != nil {
				return err
			}
			ctx, _ := c.lookup(name)
			p, err := ctx.field(args[0])
			if err != nil {
				return err
			}
			v := strings.TrimSpace(args[1])
			if p == &ctx.Host {
				if v, err = normalizeHost(v); err != nil {
					return err
				}
			}
			*p = v
			c.put(name, ctx)
			if c.CurrentContext == "" {
				c.CurrentContext = name
			}
			path, err := saveConfig(c)
			if err != nil {
				return err
			}
			saved(cmd.ErrOrStderr(), "%s of context %s saved in %s", args[0], name, path)
			return nil
		},
	}
	// A value may start with '-' (a token): flags end at the key.
	set.Flags().SetInterspersed(false)
	return set
}

func configGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get [KEY]",
		Short: "Print a setting, or all of them (tokens masked)",
		Long: `Print a setting's value as stored in the current context (or --context
NAME), or, without KEY, every setting as the commands resolve it (flags,
environment, context) with tokens masked.`,
		Example:   "  edgefaas config get host\n  edgefaas config get\n  edgefaas config get -o json --context dev",
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: sortedKeys(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, path, err := loadConfig()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(args) == 1 {
				name, ctx, err := selectContext(cmd, c)
				if err != nil {
					return err
				}
				p, err := ctx.field(args[0])
				if err != nil {
					return err
				}
				if *p == "" {
					if name == "" {
						return fmt.Errorf("%s is not set: %s has no current context", args[0], path)
					}
					return fmt.Errorf("%s is not set in context %s of %s", args[0], name, path)
				}
				fmt.Fprintln(out, *p)
				return nil
			}
			s, err := resolveSettings(cmd)
			if err != nil {
				return err
			}
			if globalFlags.output == "json" {
				return printJSON(out, map[string]string{
					"file": path, "context": s.context, "host": s.host, "token": mask(s.token), "admin_token": mask(s.adminToken),
					"tls_fingerprint": s.tlsFingerprint, "ca_file": s.caFile,
				})
			}
			tw := newTable(out)
			fmt.Fprintf(tw, "file\t%s\n", path)
			fmt.Fprintf(tw, "context\t%s\n", orNone(s.context))
			fmt.Fprintf(tw, "host\t%s\n", s.host)
			fmt.Fprintf(tw, "token\t%s\n", mask(s.token))
			fmt.Fprintf(tw, "admin_token\t%s\n", mask(s.adminToken))
			if s.tlsFingerprint != "" {
				fmt.Fprintf(tw, "tls_fingerprint\t%s\n", s.tlsFingerprint)
			}
			if s.caFile != "" {
				fmt.Fprintf(tw, "ca_file\t%s\n", s.caFile)
			}
			return tw.Flush()
		},
	}
}

func configUnsetCommand() *cobra.Command {
	return &cobra.Command{
		Use:       "unset KEY",
		Short:     "Remove a setting from the current context (or --context NAME)",
		Example:   "  edgefaas config unset admin_token",
		Args:      cobra.ExactArgs(1),
		ValidArgs: sortedKeys(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := loadConfig()
			if err != nil {
				return err
			}
			name, ctx, err := selectContext(cmd, c)
			if err != nil {
				return err
			}
			p, err := ctx.field(args[0])
			if err != nil || name == "" {
				return err // no context: nothing to remove
			}
			*p = ""
			c.put(name, ctx)
			_, err = saveConfig(c)
			return err
		},
	}
}

// orNone writes "" as (none).
func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func getContextsCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "get-contexts",
		Aliases: []string{"contexts"},
		Short:   "List the contexts; * marks the current one",
		Example: "  edgefaas config get-contexts\n  edgefaas config get-contexts -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, _, err := loadConfig()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if jsonOutput() {
				type row struct {
					Name           string `json:"name"`
					Current        bool   `json:"current"`
					Host           string `json:"host"`
					Token          string `json:"token"`
					AdminToken     string `json:"admin_token"`
					TLSFingerprint string `json:"tls_fingerprint,omitempty"`
					CAFile         string `json:"ca_file,omitempty"`
				}
				rows := []row{}
				for _, n := range c.names() {
					ctx := c.Contexts[n]
					rows = append(rows, row{n, n == c.CurrentContext, ctx.Host, mask(ctx.Token), mask(ctx.AdminToken), ctx.TLSFingerprint, ctx.CAFile})
				}
				return printJSON(out, rows)
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "CURRENT\tNAME\tHOST\tTOKEN\tADMIN TOKEN")
			for _, n := range c.names() {
				ctx, mark := c.Contexts[n], ""
				if n == c.CurrentContext {
					mark = "*"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", mark, n, ctx.Host, mask(ctx.Token), mask(ctx.AdminToken))
			}
			return tw.Flush()
		},
	}
}

func currentContextCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "current-context",
		Short:   "Print the current context's name",
		Example: "  edgefaas config current-context",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, path, err := loadConfig()
			if err != nil {
				return err
			}
			if c.CurrentContext == "" {
				return fmt.Errorf("%s has no current context ('edgefaas config use-context NAME' sets it)", path)
			}
			fmt.Fprintln(cmd.OutOrStdout(), c.CurrentContext)
			return nil
		},
	}
}

func useContextCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "use-context NAME",
		ValidArgsFunction: completeContexts,
		Short:             "Make a context the current one",
		Example:           "  edgefaas config use-context site",
		Args:              cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := loadConfig()
			if err != nil {
				return err
			}
			if _, ok := c.lookup(args[0]); !ok {
				return missingContext(args[0])
			}
			c.CurrentContext = args[0]
			if _, err := saveConfig(c); err != nil {
				return err
			}
			saved(cmd.ErrOrStderr(), "switched to context %s", args[0])
			return nil
		},
	}
}

func setContextCommand() *cobra.Command {
	var adminToken string
	cmd := &cobra.Command{
		Use:   "set-context NAME [--host URL] [--token T] [--admin-token T] [--tls-fingerprint F] [--ca-file PEM]",
		Short: "Create a context or change its settings",
		Long: `Create the context NAME or change the settings given; the others keep their
values (an empty value, --token '', removes one). A new context becomes
current when no context is current.`,
		Example: `  edgefaas config set-context site --host https://10.0.0.2:4000 --token "$TOKEN"
  edgefaas config set-context group --host http://10.0.0.1:4000,http://10.0.0.2:4000,http://10.0.0.3:4000 --tls-fingerprint 3b1f…
  edgefaas config set-context site --admin-token "$ADMIN"`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeContexts,
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := checkContextName(name); err != nil {
				return err
			}
			c, _, err := loadConfig()
			if err != nil {
				return err
			}
			ctx, existed := c.lookup(name)
			set := func(flag string, to *string, value string) {
				if cmd.Flags().Changed(flag) {
					*to = strings.TrimSpace(value)
				}
			}
			set("host", &ctx.Host, globalFlags.host)
			if cmd.Flags().Changed("host") && ctx.Host != "" {
				if ctx.Host, err = normalizeHost(ctx.Host); err != nil {
					return err
				}
			}
			set("token", &ctx.Token, globalFlags.token)
			set("admin-token", &ctx.AdminToken, adminToken)
			set("tls-fingerprint", &ctx.TLSFingerprint, globalFlags.tlsFingerprint)
			set("ca-file", &ctx.CAFile, globalFlags.caFile)
			c.put(name, ctx)
			if c.CurrentContext == "" {
				c.CurrentContext = name
			}
			path, err := saveConfig(c)
			if err != nil {
				return err
			}
			verb := "changed"
			if !existed {
				verb = "created"
			}
			if c.CurrentContext == name {
				saved(cmd.ErrOrStderr(), "context %s %s in %s (current)", name, verb, path)
			} else {
				saved(cmd.ErrOrStderr(), "context %s %s in %s; the current context is %s ('edgefaas config use-context %s' switches)", name, verb, path, c.CurrentContext, name)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&adminToken, "admin-token", "", "the token for admin and node commands (the context's token if unset)")
	return cmd
}

func deleteContextCommand() *cobra.Command {
	return &cobra.Command{
		Use:               "delete-context NAME",
		ValidArgsFunction: completeContexts,
		Short:             "Remove a context from the config file",
		Example:           "  edgefaas config delete-context dev",
		Args:              cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, _, err := loadConfig()
			if err != nil {
				return err
			}
			if _, ok := c.lookup(args[0]); !ok {
				return missingContext(args[0])
			}
			delete(c.Contexts, args[0])
			wasCurrent := c.CurrentContext == args[0]
			if wasCurrent {
				c.CurrentContext = ""
			}
			if _, err := saveConfig(c); err != nil {
				return err
			}
			if wasCurrent {
				saved(cmd.ErrOrStderr(), "deleted context %s; no context is current now ('edgefaas config use-context NAME' picks one)", args[0])
			} else {
				saved(cmd.ErrOrStderr(), "deleted context %s", args[0])
			}
			return nil
		},
	}
}

// completeContexts offers the config file's context names.
func completeContexts(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	c, _, err := loadConfig()
	if err != nil || len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return c.names(), cobra.ShellCompDirectiveNoFileComp
}

// mask shows a token's first four characters only.
func mask(token string) string {
	switch {
	case token == "":
		return "(not set)"
	case len(token) <= 8:
		return "****"
	}
	return token[:4] + "…" + fmt.Sprintf(" (%d characters)", len(token))
}
