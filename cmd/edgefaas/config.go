package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/edgefaas/edgefaas/internal/syncfile"
)

// Environment variables the client reads; a flag wins over them, they win
// over the config file.
const (
	envContext    = "EDGEFAAS_CONTEXT"
	envHost       = "EDGEFAAS_HOST"
	envToken      = "EDGEFAAS_TOKEN"
	envAdminToken = "EDGEFAAS_ADMIN_TOKEN"
	envTLSPin     = "EDGEFAAS_TLS_FINGERPRINT"
	envCAFile     = "EDGEFAAS_CA_FILE"
)

// devContext is the context `edgefaas dev` writes.
const devContext = "dev"

// defaultContext is the name an older single-host config file's settings
// get, and the context `config set` creates when there is none.
const defaultContext = "default"

// clientContext is one platform the client talks to: its address and the
// credentials for it.
type clientContext struct {
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

// cliConfig is the client's config file: named contexts and the one
// commands use unless told otherwise.
type cliConfig struct {
	// CurrentContext names the context commands use without --context or
	// EDGEFAAS_CONTEXT; empty: none (the defaults).
	CurrentContext string `json:"current_context,omitempty"`
	// Contexts are the saved contexts by name.
	Contexts map[string]clientContext `json:"contexts,omitempty"`
}

// configFile is the file's JSON: today's fields and, read only, the
// single-host fields of the format before contexts.
type configFile struct {
	cliConfig
	clientContext
}

// configKeys are the keys `config set|get|unset` accept, with their doc.
var configKeys = map[string]string{
	"host":            "the core's address, e.g. http://127.0.0.1:4000; a core group's, comma-separated",
	"token":           "the token for function and module commands",
	"admin_token":     "the token for admin and node commands (token if unset)",
	"tls_fingerprint": "SHA-256 of the core's HTTPS certificate to pin (the core logs it at start)",
	"ca_file":         "CA certificate (PEM) that signed the core's HTTPS certificate",
}

func (c *clientContext) field(key string) (*string, error) {
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

// contextName is what a context may be called: it appears in shells and
// file names.
var contextName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

func checkContextName(name string) error {
	if !contextName.MatchString(name) {
		return fmt.Errorf("context name %q: use 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	}
	return nil
}

// decodeConfig reads a config file's content. An older file with one host
// and its tokens at the top level reads as a context named default, the
// current one unless the file names another.
func decodeConfig(raw []byte) (cliConfig, error) {
	var f configFile
	if err := json.Unmarshal(raw, &f); err != nil {
		return cliConfig{}, err
	}
	c := f.cliConfig
	if f.clientContext != (clientContext{}) {
		if _, ok := c.Contexts[defaultContext]; !ok {
			if c.Contexts == nil {
				c.Contexts = map[string]clientContext{}
			}
			c.Contexts[defaultContext] = f.clientContext
		}
		if c.CurrentContext == "" {
			c.CurrentContext = defaultContext
		}
	}
	return c, nil
}

// encodeConfig writes the config file's content (contexts only: an older
// file's top-level fields are not written back).
func encodeConfig(c cliConfig) ([]byte, error) {
	raw, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode the config: %w", err)
	}
	return append(raw, '\n'), nil
}

// lookup returns the context name, reporting whether it exists.
func (c cliConfig) lookup(name string) (clientContext, bool) {
	ctx, ok := c.Contexts[name]
	return ctx, ok
}

// put stores a context under name.
func (c *cliConfig) put(name string, ctx clientContext) {
	if c.Contexts == nil {
		c.Contexts = map[string]clientContext{}
	}
	c.Contexts[name] = ctx
}

// names returns the contexts' names, sorted.
func (c cliConfig) names() []string {
	names := make([]string, 0, len(c.Contexts))
	for n := range c.Contexts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// missingContext is the error for a context name that is not in the file.
func missingContext(name string) error {
	return fmt.Errorf("context %q does not exist ('edgefaas config get-contexts' lists them, 'edgefaas config set-context %s --host ...' creates it)", name, name)
}

// setDev records a local platform's address and guest token as the dev
// context, keeping its other settings; an admin token saved for another
// host is dropped, it cannot be valid for the new platform. The dev
// context becomes current only when no context is current: a user's
// chosen site is never switched away from. It reports whether dev is
// current afterwards.
func (c *cliConfig) setDev(host, token, fingerprint string) bool {
	ctx := c.Contexts[devContext]
	if ctx.Host != host {
		ctx.AdminToken = ""
	}
	ctx.Host, ctx.Token, ctx.TLSFingerprint = host, token, fingerprint
	c.put(devContext, ctx)
	if c.CurrentContext == "" {
		c.CurrentContext = devContext
	}
	return c.CurrentContext == devContext
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
	path, err := configPath()
	if err != nil {
		return cliConfig{}, "", err
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cliConfig{}, path, nil
	}
	if err != nil {
		return cliConfig{}, path, fmt.Errorf("read the config file: %w", err)
	}
	c, err := decodeConfig(raw)
	if err != nil {
		return cliConfig{}, path, fmt.Errorf("the config file %s is not valid JSON (fix or delete it): %w", path, err)
	}
	return c, path, nil
}

// saveConfig writes the config file crash-safely (a reader sees the old
// file or the new, whole) with mode 0600 (its directory 0700): it holds
// tokens.
func saveConfig(c cliConfig) (string, error) {
	path, err := configPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return path, fmt.Errorf("create the config directory: %w", err)
	}
	raw, err := encodeConfig(c)
	if err != nil {
		return path, err
	}
	if err := syncfile.Write(path, raw, 0o600); err != nil {
		return path, fmt.Errorf("write the config file: %w", err)
	}
	return path, nil
}

// writeDevConfig records a local platform as the dev context (setDev) in
// the config file. It returns the current context's name afterwards.
func writeDevConfig(host, token, fingerprint string) (current string, err error) {
	c, _, err := loadConfig()
	if err != nil {
		return "", err
	}
	c.setDev(host, token, fingerprint)
	if _, err := saveConfig(c); err != nil {
		return "", err
	}
	return c.CurrentContext, nil
}
