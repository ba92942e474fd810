package main

import (
	"context"
	"os"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/internal/membudget"
	"github.com/edgefaas/edgefaas/internal/wasm"
	"github.com/edgefaas/edgefaas/internal/wasm/inspectproc"
)

// inspectCommand is the hidden child the core validates uploads in (see
// wasm/inspectproc): code on stdin, verdict on stdout.
func inspectCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "internal-inspect",
		Hidden: true,
		Args:   cobra.NoArgs,
		Run:    func(*cobra.Command, []string) { os.Exit(inspectproc.Serve()) },
	}
}

// uploadInspector validates uploads in a bounded child process of this
// same binary, each admitted by its memory bound against n shares of
// membudget.ValidatorChild (the split's Validator; more wait in
// inspectproc's bounded queue); if the binary cannot be found, in process.
func uploadInspector(n int) func(ctx context.Context, code []byte) (wasm.ModuleInfo, error) {
	exe, err := os.Executable()
	if err != nil {
		return wasm.Inspect
	}
	return inspectproc.BoundedInspector([]string{exe, "internal-inspect"}, nil, inspectproc.Bounds{Concurrent: max(n, 1), Memory: membudget.ValidatorChild})
}
