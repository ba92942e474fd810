package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/http/client"
)

// globalFlags are the client's persistent flags, registered on the root
// command in main.go.
var globalFlags struct {
	context        string
	host           string
	token          string
	output         string
	tlsFingerprint string
	caFile         string
}

// settings are the resolved host and tokens of one command.
type settings struct {
	context                 string // "" when no context is used
	host, token, adminToken string
	tlsFingerprint, caFile  string
}

// contextChoice names the context a command uses: --context, else
// $EDGEFAAS_CONTEXT, else the file's current context; "" for none.
func contextChoice(cmd *cobra.Command, c cliConfig) string {
	if f := cmd.Flags().Lookup("context"); f != nil && f.Changed {
		return f.Value.String()
	}
	if v := os.Getenv(envContext); v != "" {
		return v
	}
	return c.CurrentContext
}

// selectContext returns the context a command uses and its name; a name
// given that is not in the file is an error.
func selectContext(cmd *cobra.Command, c cliConfig) (string, clientContext, error) {
	name := contextChoice(cmd, c)
	if name == "" {
		return "", clientContext{}, nil
	}
	ctx, ok := c.lookup(name)
	if !ok {
		return name, clientContext{}, missingContext(name)
	}
	return name, ctx, nil
}

// resolveSettings applies the precedence flag > environment > the chosen
// context of the config file > default.
func resolveSettings(cmd *cobra.Command) (settings, error) {
	c, _, err := loadConfig()
	if err != nil {
		return settings{}, err
	}
	name, ctx, err := selectContext(cmd, c)
	if err != nil {
		return settings{}, err
	}
	pick := func(flag string, envs []string, file ...string) string {
		if f := cmd.Flags().Lookup(flag); f != nil && f.Changed {
			return f.Value.String()
		}
		for _, e := range envs {
			if v := os.Getenv(e); v != "" {
				return v
			}
		}
		for _, v := range file {
			if v != "" {
				return v
			}
		}
		return ""
	}
	s := settings{
		context:        name,
		host:           pick("host", []string{envHost}, ctx.Host, client.DefaultHost),
		token:          pick("token", []string{envToken}, ctx.Token),
		adminToken:     pick("token", []string{envAdminToken, envToken}, ctx.AdminToken, ctx.Token),
		tlsFingerprint: pick("tls-fingerprint", []string{envTLSPin}, ctx.TLSFingerprint),
		caFile:         pick("ca-file", []string{envCAFile}, ctx.CAFile),
	}
	return s, nil
}

// newClient builds the API client for a command; admin picks the admin
// token.
func newClient(cmd *cobra.Command, admin bool) (*client.Client, error) {
	s, err := resolveSettings(cmd)
	if err != nil {
		return nil, err
	}
	token := s.token
	if admin {
		token = s.adminToken
	}
	c, err := client.New(s.host, token)
	if err != nil {
		return nil, err
	}
	c.UserAgent = "edgefaas-cli/" + version
	if s.tlsFingerprint != "" {
		if err := c.PinFingerprint(s.tlsFingerprint); err != nil {
			return nil, err
		}
	}
	if s.caFile != "" {
		if err := c.TrustCAFile(s.caFile); err != nil {
			return nil, err
		}
	}
	return c, nil
}
