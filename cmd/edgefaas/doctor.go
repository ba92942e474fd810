package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/internal/doctor"
	buildversion "github.com/edgefaas/edgefaas/internal/version"
)

// errDoctorFailed is the exit of a doctor run with a failed check (the
// findings are already printed).
var errDoctorFailed = errors.New("doctor: a check failed; see the fixes above")

// doctorCommand builds `edgefaas doctor`: it asks the core what a site's
// operator checks first and says, for each problem, what to do.
func doctorCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check the core, the token, the workers and the local toolchains, each finding with its fix",
		Long: `doctor checks, with the current context's address and token:
  core          it answers (TLS verified or pinned)
  token         the core accepts it
  role          admin or user
  clock         the core's clock against this machine's
  disk          free space on the core's data directory
  async queue   calls waiting and how long the oldest has
  node joins    whether a worker needs a join token
  workers       joined, their versions, clocks and last reports
  toolchains    what 'fn build' can build here (Go, C)
The disk, queue, clock and node-join checks need an admin token. It exits
non-zero when a check fails (not for warnings).`,
		Example: "  edgefaas doctor\n  edgefaas doctor --context site-b -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			report := doctor.Diagnose(gatherFacts(cmd), time.Now())
			w := cmd.OutOrStdout()
			if jsonOutput() {
				if err := printJSON(w, report); err != nil {
					return err
				}
			} else {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				for _, f := range report {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.ToUpper(string(f.Level)), f.Check, f.Detail)
					if f.Fix != "" {
						fmt.Fprintf(tw, "\t\tfix: %s\n", f.Fix)
					}
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			if report.Failed() {
				return errDoctorFailed
			}
			return nil
		},
	}
	quietUsage(cmd)
	return cmd
}

// gatherFacts asks the core (each request bounded) and looks at PATH.
func gatherFacts(cmd *cobra.Command) doctor.Facts {
	f := doctor.Facts{Client: buildversion.Get().Version, Toolchains: localToolchains()}
	if s, err := resolveSettings(cmd); err == nil {
		f.Host = s.host
	}
	c, err := newClient(cmd, true)
	if err != nil {
		f.CoreErr = err
		return f
	}
	ask := func(do func(ctx context.Context) error) {
		ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
		defer cancel()
		_ = do(ctx)
	}
	ask(func(ctx context.Context) error {
		v, err := c.Version(ctx)
		if err == nil {
			f.Core = &v
			if len(c.Cores) > 1 { // the core of the group that answered
				f.Host = c.Core().String()
			}
		}
		f.CoreErr = err
		return err
	})
	if f.Core == nil {
		return f
	}
	ask(func(ctx context.Context) error {
		f.Asked = time.Now()
		st, err := c.AdminStatus(ctx)
		f.Answered = time.Now()
		if err == nil {
			f.Status = &st
		}
		f.StatusErr = err
		return err
	})
	ask(func(ctx context.Context) error {
		f.Nodes, f.NodesErr = c.ListNodes(ctx)
		return f.NodesErr
	})
	return f
}

// localToolchains finds the compilers `fn build` runs.
func localToolchains() []doctor.Toolchain {
	goTC := doctor.Toolchain{Name: "go", Install: "install Go 1.21 or later (https://go.dev/dl/)"}
	if bin, err := exec.LookPath("go"); err == nil {
		if out, err := exec.Command(bin, "version").Output(); err == nil {
			goTC.Found = strings.TrimSpace(string(out))
			if !hasWasip1(goTC.Found) {
				goTC.Problem = "GOOS=wasip1 needs Go 1.21 or later"
			}
		}
	}
	clang := os.Getenv("EDGEFAAS_CLANG")
	if clang == "" {
		clang = "clang"
	}
	cTC := doctor.Toolchain{Name: "c", Install: "install clang, lld and wasi-libc (Debian/Ubuntu: apt-get install clang lld wasi-libc), or set EDGEFAAS_CLANG"}
	if bin, err := exec.LookPath(clang); err == nil {
		out, _ := exec.Command(bin, "--version").Output()
		cTC.Found, _, _ = strings.Cut(strings.TrimSpace(string(out)), "\n")
		if cTC.Found == "" {
			cTC.Found = bin
		}
		if err := tryWasiClang(bin); err != nil {
			cTC.Problem = "cannot build for wasm32-wasi (wasm-ld or wasi-libc missing?): " + err.Error()
		}
	}
	return []doctor.Toolchain{goTC, cTC}
}

// hasWasip1 reports whether a `go version` line names Go 1.21 or later.
func hasWasip1(line string) bool {
	var major, minor int
	for _, field := range strings.Fields(line) {
		if v, ok := strings.CutPrefix(field, "go1."); ok {
			if _, err := fmt.Sscanf(v, "%d", &minor); err == nil {
				major = 1
			}
		}
	}
	return major == 1 && minor >= 21
}

// tryWasiClang builds a one-line C program for wasm32-wasi.
func tryWasiClang(clang string) error {
	dir, err := os.MkdirTemp("", "edgefaas-doctor-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	src := filepath.Join(dir, "t.c")
	if err := os.WriteFile(src, []byte("int main(void) { return 0; }\n"), 0o600); err != nil {
		return err
	}
	out, err := exec.Command(clang, "--target=wasm32-wasi", "-O2", "-o", filepath.Join(dir, "t.wasm"), src).CombinedOutput()
	if err != nil {
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return fmt.Errorf("%v: %s", err, line)
	}
	return nil
}
