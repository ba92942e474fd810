package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/http/client"
)

// globalFlags are the client's persistent flags, registered on the root
// command in main.go.
var globalFlags struct {
	host           string
	token          string
	output         string
	tlsFingerprint string
	caFile         string
}

// Environment variables the client reads; a flag wins over them, they win
// over the config file.
const (
	envHost       = "EDGEFAAS_HOST"
	envToken      = "EDGEFAAS_TOKEN"
	envAdminToken = "EDGEFAAS_ADMIN_TOKEN"
	envTLSPin     = "EDGEFAAS_TLS_FINGERPRINT"
	envCAFile     = "EDGEFAAS_CA_FILE"
)

// cliConfig is the client's config file.
type cliConfig struct {
	// Host is the core's address.
	Host string `json:"host,omitempty"`
	// Token is the token for ordinary commands.
	Token string `json:"token,omitempty"`
	// AdminToken is used by admin and node commands; Token if empty.
	AdminToken string `json:"admin_token,omitempty"`
	// TLSFingerprint pins the core's HTTPS certificate (SHA-256, hex).
	TLSFingerprint string `json:"tls_fingerprint,omitempty"`
	// CAFile verifies the core's HTTPS certificate against this CA (PEM).
	CAFile string `json:"ca_file,omitempty"`
}

// configKeys are the keys `config set|get|unset` accept, with their doc.
var configKeys = map[string]string{
	"host":            "the core's address, e.g. http://127.0.0.1:4000",
	"token":           "the token for function and module commands",
	"admin_token":     "the token for admin and node commands (token if unset)",
	"tls_fingerprint": "SHA-256 of the core's HTTPS certificate to pin (the core logs it at start)",
	"ca_file":         "CA certificate (PEM) that signed the core's HTTPS certificate",
}

func (c *cliConfig) field(key string) (*string, error) {
	switch strings.ReplaceAll(key, "-", "_") {
	case "host":
		return &c.Host, nil
	case "token":
		return &c.Token, nil
	case "admin_token":
		return &c.AdminToken, nil
	case "tls_fingerprint":
		return &c.TLSFingerprint, nil
	case "ca_file":
		return &c.CAFile, nil
	}
	return nil, fmt.Errorf("unknown config key %q; the keys are %s", key, strings.Join(sortedKeys(), ", "))
}

func sortedKeys() []string {
	keys := make([]string, 0, len(configKeys))
	for k := range configKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// configPath is $XDG_CONFIG_HOME/edgefaas/config.json, else
// ~/.config/edgefaas/config.json.
func configPath() (string, error) {
	if d := os.Getenv("XDG_CONFIG_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "edgefaas", "config.json"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find the config directory: %w (set XDG_CONFIG_HOME or HOME)", err)
	}
	return filepath.Join(home, ".config", "edgefaas", "config.json"), nil
}

// loadConfig reads the config file; a missing file is an empty config.
func loadConfig() (cliConfig, string, error) {
	var c cliConfig
	path, err := configPath()
	if err != nil {
		return c, "", err
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return c, path, nil
	}
	if err != nil {
		return c, path, fmt.Errorf("read the config file: %w", err)
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, path, fmt.Errorf("the config file %s is not valid JSON (fix or delete it): %w", path, err)
	}
	return c, path, nil
}

// saveConfig writes the config file atomically with mode 0600 (its
// directory 0700): it holds tokens.
func saveConfig(c cliConfig) (string, error) {
	path, err := configPath()
	if err != nil {
		return "", err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return path, fmt.Errorf("create the config directory: %w", err)
	}
	raw, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return path, fmt.Errorf("encode the config: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".config-*.json")
	if err != nil {
		return path, fmt.Errorf("write the config file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return path, fmt.Errorf("write the config file: %w", err)
	}
	if _, err := tmp.Write(append(raw, '\n')); err != nil {
		tmp.Close()
		return path, fmt.Errorf("write the config file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return path, fmt.Errorf("write the config file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return path, fmt.Errorf("write the config file: %w", err)
	}
	return path, nil
}

// editConfig loads the config file, lets edit change the setting key and
// saves the file; it returns the file's path.
func editConfig(key string, edit func(value *string) error) (string, error) {
	c, _, err := loadConfig()
	if err != nil {
		return "", err
	}
	p, err := c.field(key)
	if err != nil {
		return "", err
	}
	if err := edit(p); err != nil {
		return "", err
	}
	return saveConfig(c)
}

// writeDevConfig records a local platform's address and guest token in the
// config file, keeping its other settings, so that client commands work
// right after `edgefaas dev`. An admin token saved for another host is
// dropped: it cannot be valid for the new platform.
func writeDevConfig(host, token, fingerprint string) error {
	c, _, err := loadConfig()
	if err != nil {
		return err
	}
	if c.Host != host {
		c.AdminToken = ""
	}
	c.Host, c.Token, c.TLSFingerprint = host, token, fingerprint
	_, err = saveConfig(c)
	return err
}

// settings are the resolved host and tokens of one command.
type settings struct {
	host, token, adminToken string
	tlsFingerprint, caFile  string
}

// resolveSettings applies the precedence flag > environment > config file
// > default.
func resolveSettings(cmd *cobra.Command) (settings, error) {
	c, _, err := loadConfig()
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
		host:           pick("host", []string{envHost}, c.Host, client.DefaultHost),
		token:          pick("token", []string{envToken}, c.Token),
		adminToken:     pick("token", []string{envAdminToken, envToken}, c.AdminToken, c.Token),
		tlsFingerprint: pick("tls-fingerprint", []string{envTLSPin}, c.TLSFingerprint),
		caFile:         pick("ca-file", []string{envCAFile}, c.CAFile),
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

// configCommand builds `edgefaas config`.
func configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Show or change the client's settings (core address, tokens)",
		Long: `Show or change the client's settings, kept in
$XDG_CONFIG_HOME/edgefaas/config.json (else ~/.config/edgefaas/config.json),
readable only by you (mode 0600).

Keys:
  host         ` + configKeys["host"] + `
  token        ` + configKeys["token"] + `
  admin_token  ` + configKeys["admin_token"] + `
  tls_fingerprint  ` + configKeys["tls_fingerprint"] + `
  ca_file      ` + configKeys["ca_file"] + `

Precedence: the flags --host, --token, --tls-fingerprint and --ca-file win
over the environment (EDGEFAAS_HOST, EDGEFAAS_TOKEN, EDGEFAAS_ADMIN_TOKEN for
admin commands, EDGEFAAS_TLS_FINGERPRINT, EDGEFAAS_CA_FILE), which wins over
this file. 'edgefaas dev' writes host and token here (and the fingerprint
when it serves HTTPS).`,
		Example: `  edgefaas config set host https://10.0.0.2:4000
  edgefaas config set tls_fingerprint 3b1f…  # from the core's log: "API TLS: ... fingerprint="
  edgefaas config set token "$(grep Guest= /var/lib/edgefaas/core/tokens | cut -d= -f2)"
  edgefaas config get host`,
	}
	set := &cobra.Command{
		Use:       "set KEY VALUE",
		Short:     "Set a setting",
		Example:   "  edgefaas config set host http://127.0.0.1:4000\n  edgefaas config set admin_token 3f2c…",
		Args:      cobra.ExactArgs(2),
		ValidArgs: sortedKeys(),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := editConfig(args[0], func(p *string) error {
				v := strings.TrimSpace(args[1])
				if args[0] == "host" {
					u, err := client.ParseHost(v)
					if err != nil {
						return err
					}
					v = u.String()
				}
				*p = v
				return nil
			})
			if err != nil {
				return err
			}
			if globalFlags.output != "json" {
				fmt.Fprintf(cmd.ErrOrStderr(), "%s saved in %s\n", args[0], path)
			}
			return nil
		},
	}
	// A value may start with '-' (a token): flags end at the key.
	set.Flags().SetInterspersed(false)
	get := &cobra.Command{
		Use:   "get [KEY]",
		Short: "Print a setting, or all of them (tokens masked)",
		Long: `Print a setting's value as stored in the config file, or, without KEY,
every setting as the commands resolve it (flags, environment, file) with
tokens masked and where each value comes from.`,
		Example:   "  edgefaas config get host\n  edgefaas config get\n  edgefaas config get -o json",
		Args:      cobra.MaximumNArgs(1),
		ValidArgs: sortedKeys(),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, path, err := loadConfig()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if len(args) == 1 {
				p, err := c.field(args[0])
				if err != nil {
					return err
				}
				if *p == "" {
					return fmt.Errorf("%s is not set in %s", args[0], path)
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
					"file": path, "host": s.host, "token": mask(s.token), "admin_token": mask(s.adminToken),
					"tls_fingerprint": s.tlsFingerprint, "ca_file": s.caFile,
				})
			}
			tw := newTable(out)
			fmt.Fprintf(tw, "file\t%s\n", path)
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
	unset := &cobra.Command{
		Use:       "unset KEY",
		Short:     "Remove a setting from the config file",
		Example:   "  edgefaas config unset admin_token",
		Args:      cobra.ExactArgs(1),
		ValidArgs: sortedKeys(),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := editConfig(args[0], func(p *string) error {
				*p = ""
				return nil
			})
			return err
		},
	}
	group(cmd, set, get, unset)
	quietUsage(cmd)
	return cmd
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
