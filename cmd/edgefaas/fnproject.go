package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/internal/jsbuild"
)

// sdkModule is the Go SDK's module, a module of its own (sdk/go/go.mod)
// with no requirements, and its only package.
const (
	sdkModule  = "github.com/edgefaas/edgefaas/sdk/go"
	sdkPackage = sdkModule
)

// languages are the templates `fn new` knows.
var languages = []string{"go", "c", "wasi-go", "js"}

// projectName is a valid function name (and so a valid file name).
var projectName = regexp.MustCompile(`^[_a-zA-Z0-9]{1,160}$`)

func fnNewCommand() *cobra.Command {
	var lang, dir, sdk string
	cmd := &cobra.Command{
		Use:   "new NAME",
		Short: "Create a function project from a template",
		Long: `Create a function project in the directory NAME (or --dir) from a template:

  go       a Go reactor using the edgefaas SDK (` + sdkPackage + `),
           built with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared
  c        a WASI command in C reading JSON on stdin, writing JSON on stdout,
           built with clang --target=wasm32-wasi
  wasi-go  a plain Go WASI command (no SDK): JSON on stdin and stdout
  js       a JavaScript function in FunLess's template (module.exports.fl_main)
           with a package.json: npm packages it requires are bundled

Build it with 'edgefaas fn build NAME'. --sdk points the Go template's
go.mod at the SDK of a local checkout of edgefaas (a replace directive to
its sdk/go), for offline builds or SDK development.`,
		Example: `  edgefaas fn new hello
  edgefaas fn new resize --lang c
  edgefaas fn new hellojs --lang js
  edgefaas fn new hello --sdk ~/src/edgefaas`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !projectName.MatchString(name) {
				return fmt.Errorf("%q is not a function name: use 1 to 160 letters, digits and _", name)
			}
			if dir == "" {
				dir = name
			}
			files, err := templateFiles(lang, name, sdk)
			if err != nil {
				return err
			}
			if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
				return fmt.Errorf("the directory %s already exists and is not empty", dir)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("create the project directory: %w", err)
			}
			names := make([]string, 0, len(files))
			for n := range files {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				if err := os.WriteFile(filepath.Join(dir, n), []byte(files[n]), 0o644); err != nil {
					return fmt.Errorf("write %s: %w", n, err)
				}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "created the %s function project %s in %s:\n", lang, name, dir)
			for _, n := range names {
				fmt.Fprintf(out, "  %s\n", filepath.Join(dir, n))
			}
			fmt.Fprintf(out, "next:\n  edgefaas fn build %s\n  edgefaas fn create %s %s\n  edgefaas fn invoke %s -a name=Ada\n",
				dir, name, filepath.Join(dir, name+outputExt(lang)), name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&lang, "lang", "l", "go", "the template: "+strings.Join(languages, ", "))
	cmd.Flags().StringVarP(&dir, "dir", "d", "", "the project's directory (default NAME)")
	cmd.Flags().StringVar(&sdk, "sdk", "", "a local edgefaas checkout whose sdk/go the go template's go.mod replaces the SDK with")
	cmd.RegisterFlagCompletionFunc("lang", cobra.FixedCompletions(languages, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// sdkVersion is the SDK version generated go.mod files require: this
// binary's module version when it is a release (the SDK is tagged
// sdk/go/VERSION with it), else v0.0.0 (which needs --sdk or a replace
// directive to build).
func sdkVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && strings.HasPrefix(bi.Main.Version, "v") {
		return bi.Main.Version
	}
	if strings.HasPrefix(version, "v") {
		return version
	}
	return "v0.0.0"
}

// templateFiles returns a template's files by name.
func templateFiles(lang, name, sdk string) (map[string]string, error) {
	gitignore := "*.wasm\n"
	switch lang {
	case "go":
		gomod := fmt.Sprintf("module %s\n\ngo 1.26\n\nrequire %s %s\n", name, sdkModule, sdkVersion())
		if sdk != "" {
			abs, err := filepath.Abs(sdk)
			if err != nil {
				return nil, fmt.Errorf("--sdk: %w", err)
			}
			sdkDir := filepath.Join(abs, "sdk", "go")
			if _, err := os.Stat(filepath.Join(sdkDir, "go.mod")); err != nil {
				return nil, fmt.Errorf("--sdk %s is not an edgefaas checkout (it has no sdk/go/go.mod)", sdk)
			}
			gomod += fmt.Sprintf("\nreplace %s => %s\n", sdkModule, sdkDir)
		}
		return map[string]string{"go.mod": gomod, "main.go": goTemplate(name), ".gitignore": gitignore}, nil
	case "wasi-go":
		return map[string]string{
			"go.mod":     fmt.Sprintf("module %s\n\ngo 1.26\n", name),
			"main.go":    wasiGoTemplate(name),
			".gitignore": gitignore,
		}, nil
	case "c":
		return map[string]string{"main.c": cTemplate(name), ".gitignore": gitignore}, nil
	case "js":
		return jsbuild.Template(name), nil
	}
	return nil, fmt.Errorf("unknown --lang %q; choose one of %s", lang, strings.Join(languages, ", "))
}

// outputExt is the extension of what a project of lang builds: a script
// for JavaScript, a module otherwise.
func outputExt(lang string) string {
	if lang == "js" {
		return ".js"
	}
	return ".wasm"
}

func goTemplate(name string) string {
	return `// Command ` + name + ` is an edgefaas function: it gets its arguments as
// JSON and returns a value that is sent back as JSON.
//
// Build: edgefaas fn build   (GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared)
package main

import (
	"encoding/json"

	edgefaas "` + sdkPackage + `"
)

func init() {
	edgefaas.Handle(func(input json.RawMessage) (any, error) {
		var args struct {
			Name string ` + "`json:\"name\"`" + `
		}
		if err := json.Unmarshal(input, &args); err != nil {
			return nil, err
		}
		if args.Name == "" {
			args.Name = "World"
		}
		return map[string]string{"message": "Hello, " + args.Name + "!"}, nil
	})
}

// main is not called: the module is a reactor whose entry point is the
// SDK's exported __invoke.
func main() {}
`
}

func wasiGoTemplate(name string) string {
	return `// Command ` + name + ` is an edgefaas function written as a plain WASI
// command: JSON arguments on stdin, the JSON result on stdout, logs on
// stderr, and a non-zero exit with a message on stderr for an error.
//
// Build: edgefaas fn build   (GOOS=wasip1 GOARCH=wasm go build)
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	var args struct {
		Name string ` + "`json:\"name\"`" + `
	}
	if err := json.NewDecoder(os.Stdin).Decode(&args); err != nil {
		fmt.Fprintln(os.Stderr, "bad input:", err)
		os.Exit(1)
	}
	if args.Name == "" {
		args.Name = "World"
	}
	json.NewEncoder(os.Stdout).Encode(map[string]string{"message": "Hello, " + args.Name + "!"})
}
`
}

func cTemplate(name string) string {
	return `// ` + name + ` is an edgefaas function written as a WASI command in C:
// JSON arguments on stdin, the JSON result on stdout, logs on stderr.
// It finds "name":"..." without a JSON library to stay a few kilobytes.
//
// Build: edgefaas fn build   (clang --target=wasm32-wasi -O2)
#include <stdio.h>
#include <string.h>

int main(void) {
    char in[4096];
    size_t n = fread(in, 1, sizeof in - 1, stdin);
    in[n] = 0;
    char name[256] = "World";
    const char *p = strstr(in, "\"name\"");
    if (p && (p = strchr(p + 6, '"'))) {
        const char *q = strchr(p + 1, '"');
        if (q && q - p - 1 < (long)sizeof name) {
            memcpy(name, p + 1, q - p - 1);
            name[q - p - 1] = 0;
        }
    }
    fprintf(stderr, "greeting %s\n", name);
    printf("{\"message\":\"Hello, %s!\"}\n", name);
    return 0;
}
`
}

func fnBuildCommand() *cobra.Command {
	var lang, output string
	cmd := &cobra.Command{
		Use:   "build [DIR] [-- COMPILER FLAGS...]",
		Short: "Compile a function project to a .wasm module (or a JavaScript bundle)",
		Long: `Compile the function project in DIR (default .) to DIR/<name>.wasm (a
JavaScript project: DIR/<name>.js) and print its size. The language is
found from the files (a go.mod importing the SDK: go; another go.mod:
wasi-go; .c files: c; a package.json, index.js or index.mjs: js) unless
--lang is given:

  go       GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags='-s -w'
  wasi-go  GOOS=wasip1 GOARCH=wasm go build -trimpath -ldflags='-s -w'
  c        clang --target=wasm32-wasi -O2 -s *.c   ($EDGEFAAS_CLANG overrides clang)
  js       esbuild, built into edgefaas: package.json's main (or index.js)
           and the packages it requires or imports from node_modules (run
           npm install first), bundled into one CommonJS script for ES2020

Arguments after -- are passed to the compiler (not for js). The compiler's
messages go to standard error.`,
		Example: `  edgefaas fn build hello
  edgefaas fn build . -o /tmp/fn.wasm
  edgefaas fn build resize -- -mexec-model=reactor`,
		Args: func(cmd *cobra.Command, args []string) error {
			n := len(args)
			if d := cmd.ArgsLenAtDash(); d >= 0 {
				n = d
			}
			if n > 1 {
				return fmt.Errorf("accepts at most one directory, got %d arguments", n)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, extra := ".", []string(nil)
			if d := cmd.ArgsLenAtDash(); d >= 0 {
				extra = args[d:]
				args = args[:d]
			}
			if len(args) == 1 {
				dir = args[0]
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				return fmt.Errorf("project directory: %w", err)
			}
			if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
				return fmt.Errorf("%s is not a directory", dir)
			}
			if lang == "" {
				if lang, err = detectLanguage(abs); err != nil {
					return err
				}
			}
			if output == "" {
				output = filepath.Join(abs, filepath.Base(abs)+outputExt(lang))
			}
			if output, err = filepath.Abs(output); err != nil {
				return fmt.Errorf("output path: %w", err)
			}
			if err := buildProject(cmd, abs, lang, output, extra); err != nil {
				return err
			}
			fi, err := os.Stat(output)
			if err != nil {
				return fmt.Errorf("the build did not produce %s: %w", output, err)
			}
			if jsonOutput() {
				return printJSON(cmd.OutOrStdout(), map[string]any{"path": output, "size": fi.Size(), "lang": lang})
			}
			rel := output
			if wd, err := os.Getwd(); err == nil {
				if r, err := filepath.Rel(wd, output); err == nil && !strings.HasPrefix(r, "..") {
					rel = r
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "built %s (%s, %s, %d bytes)\n", rel, lang, humanBytes(fi.Size()), fi.Size())
			return nil
		},
	}
	cmd.Flags().StringVarP(&lang, "lang", "l", "", "the language ("+strings.Join(languages, ", ")+"); found from the files if not given")
	cmd.Flags().StringVarP(&output, "output-file", "O", "", "the .wasm file (or .js bundle) to write (default DIR/<dir name>.wasm, .js for js)")
	cmd.RegisterFlagCompletionFunc("lang", cobra.FixedCompletions(languages, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// detectLanguage tells the project's language from its files.
func detectLanguage(dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
		gos, _ := filepath.Glob(filepath.Join(dir, "*.go"))
		for _, f := range gos {
			b, err := os.ReadFile(f)
			if err == nil && strings.Contains(string(b), `"`+sdkPackage+`"`) {
				return "go", nil
			}
		}
		return "wasi-go", nil
	}
	if cs, _ := filepath.Glob(filepath.Join(dir, "*.c")); len(cs) > 0 {
		return "c", nil
	}
	if jsbuild.IsProject(dir) {
		return "js", nil
	}
	return "", fmt.Errorf("%s has no go.mod, no .c file and no package.json or index.js, so there is nothing to build; create a project with 'edgefaas fn new NAME'", dir)
}

// buildProject runs the language's compiler.
func buildProject(cmd *cobra.Command, dir, lang, output string, extra []string) error {
	var c *exec.Cmd
	switch lang {
	case "js":
		return bundleJS(cmd, dir, output, extra)
	case "go", "wasi-go":
		gobin, err := exec.LookPath("go")
		if err != nil {
			return errors.New("the Go toolchain (go) is not installed or not on PATH: install Go 1.26 or newer from https://go.dev/dl/")
		}
		args := []string{"build"}
		if lang == "go" {
			args = append(args, "-buildmode=c-shared")
		}
		args = append(args, "-trimpath", "-ldflags=-s -w", "-o", output)
		args = append(append(args, extra...), ".")
		c = exec.Command(gobin, args...)
		c.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	case "c":
		clang := os.Getenv("EDGEFAAS_CLANG")
		if clang == "" {
			clang = "clang"
		}
		bin, err := exec.LookPath(clang)
		if err != nil {
			return fmt.Errorf("%s is not installed or not on PATH: install clang, lld and wasi-libc (Debian/Ubuntu: apt-get install clang lld wasi-libc; in an edgefaas checkout: make deps), or set EDGEFAAS_CLANG", clang)
		}
		srcs, _ := filepath.Glob(filepath.Join(dir, "*.c"))
		if len(srcs) == 0 {
			return fmt.Errorf("%s has no .c file to build", dir)
		}
		for i, s := range srcs {
			srcs[i] = filepath.Base(s)
		}
		args := append([]string{"--target=wasm32-wasi", "-O2", "-s", "-o", output}, extra...)
		c = exec.Command(bin, append(args, srcs...)...)
	default:
		return fmt.Errorf("unknown --lang %q; choose one of %s", lang, strings.Join(languages, ", "))
	}
	c.Dir = dir
	c.Stdout = cmd.ErrOrStderr()
	c.Stderr = cmd.ErrOrStderr()
	if err := c.Run(); err != nil {
		hint := ""
		if lang == "c" {
			hint = " (if it cannot find stdio.h or the wasm32-wasi target, install wasi-libc and lld)"
		}
		return fmt.Errorf("%s build failed: %v%s", lang, err, hint)
	}
	return nil
}

// bundleJS bundles a JavaScript project into the script output.
func bundleJS(cmd *cobra.Command, dir, output string, extra []string) error {
	if len(extra) > 0 {
		return fmt.Errorf("a js build takes no compiler arguments (got %s)", strings.Join(extra, " "))
	}
	if entry, err := jsbuild.Entry(dir); err == nil && entry == output {
		return fmt.Errorf("the bundle would overwrite the entry script %s: give another -O", output)
	}
	warnings, err := jsbuild.Bundle(dir, output)
	for _, w := range warnings {
		fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
	}
	if err != nil {
		return fmt.Errorf("js build failed:\n%w", err)
	}
	return nil
}
