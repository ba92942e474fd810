package main

import (
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestShorthandsMeanOneThing walks the whole command tree: a one-letter
// flag names the same long flag in every command that has it, so that -f
// in one command never means what --function means in another.
func TestShorthandsMeanOneThing(t *testing.T) {
	uses := map[string]map[string][]string{} // shorthand → long name → commands
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		visit := func(f *pflag.Flag) {
			if f.Shorthand == "" {
				return
			}
			if uses[f.Shorthand] == nil {
				uses[f.Shorthand] = map[string][]string{}
			}
			uses[f.Shorthand][f.Name] = append(uses[f.Shorthand][f.Name], c.CommandPath())
		}
		c.LocalFlags().VisitAll(visit)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	root := rootCommand()
	root.InitDefaultHelpFlag()
	walk(root)
	if len(uses) == 0 {
		t.Fatal("no shorthand found: the walk is broken")
	}
	for short, names := range uses {
		if len(names) < 2 {
			continue
		}
		var lines []string
		for name, cmds := range names {
			sort.Strings(cmds)
			lines = append(lines, "--"+name+": "+strings.Join(cmds, ", "))
		}
		sort.Strings(lines)
		t.Errorf("-%s names %d different flags:\n  %s", short, len(names), strings.Join(lines, "\n  "))
	}
}
