package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// eventsFlag adds --events: a function's triggers (docs/triggers-and-sinks.md).
func eventsFlag(cmd *cobra.Command, v *string) {
	cmd.Flags().StringVar(v, "events", "", `the function's triggers, a JSON list or @FILE, e.g. '[{"type":"cron","schedule":"@every 1m"}]'; on update it replaces them ('[]' removes them)`)
}

// sinksFlag adds --sinks: where a function's results go (docs/triggers-and-sinks.md).
func sinksFlag(cmd *cobra.Command, v *string) {
	cmd.Flags().StringVar(v, "sinks", "", `where the function's results are delivered, a JSON list or @FILE, e.g. '[{"type":"webhook","params":{"url":"https://hooks.example/in"}}]'; on update it replaces them ('[]' removes them)`)
}

// readEvents returns the --events value as JSON (the core validates it).
func readEvents(v string) (json.RawMessage, error) { return readJSONFlag("events", v) }

// readSinks returns the --sinks value as JSON (the core validates it).
func readSinks(v string) (json.RawMessage, error) { return readJSONFlag("sinks", v) }

// readJSONFlag reads flag's value, given inline or as @FILE, and checks
// that it is JSON.
func readJSONFlag(flag, v string) (json.RawMessage, error) {
	raw := []byte(v)
	if name, ok := strings.CutPrefix(v, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", flag, err)
		}
		raw = b
	}
	raw = bytes.TrimSpace(raw)
	if !json.Valid(raw) {
		return nil, fmt.Errorf("--%s: not JSON: %s", flag, raw)
	}
	return raw, nil
}
