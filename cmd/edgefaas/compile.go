package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/internal/wasm"
)

// compileCommand is the hidden child a worker compiles modules in (see
// wasm.Config.CompileChild): the module on stdin, the entry in the
// worker's compile cache.
func compileCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "internal-compile",
		Hidden: true,
		Args:   cobra.NoArgs,
		Run:    func(*cobra.Command, []string) { os.Exit(wasm.ServeCompile()) },
	}
}

// compileChild is the command line of that child: this same binary, or
// none (compiling in process) if it cannot be found.
func compileChild() []string {
	exe, err := os.Executable()
	if err != nil {
		return nil
	}
	return []string{exe, "internal-compile"}
}
