package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// eventsFlag adds --events: a function's triggers (see README, Triggers).
func eventsFlag(cmd *cobra.Command, v *string) {
	cmd.Flags().StringVar(v, "events", "", `the function's triggers, a JSON list or @FILE, e.g. '[{"type":"cron","schedule":"@every 1m"}]'; on update it replaces them ('[]' removes them)`)
}

// readEvents returns the --events value as JSON (the core validates it).
func readEvents(v string) (json.RawMessage, error) {
	raw := []byte(v)
	if name, ok := strings.CutPrefix(v, "@"); ok {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("--events: %w", err)
		}
		raw = b
	}
	raw = bytes.TrimSpace(raw)
	if !json.Valid(raw) {
		return nil, fmt.Errorf("--events: not JSON: %s", raw)
	}
	return raw, nil
}
