package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/edgefaas/edgefaas/http/client"
	"github.com/edgefaas/edgefaas/internal/jsengine"
)

// fnCommand builds `edgefaas fn`: FunLess's `fl fn` verbs plus new/build.
func fnCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "fn",
		Aliases: []string{"function", "functions"},
		Short:   "Write, build, deploy and invoke functions",
		Long: `Write, build, deploy and invoke functions.

A function lives in a module (-m; the default module is _). The verbs are
FunLess's (create, upload, update, delete, get, list, invoke) plus new and
build, which make and compile a function project.`,
		Example: `  edgefaas fn new hello --lang go
  edgefaas fn build hello
  edgefaas fn create hello hello/hello.wasm
  edgefaas fn invoke hello -a name=Ada`,
	}
	group(cmd, fnNewCommand(), fnBuildCommand(), fnCreateCommand("create"), fnCreateCommand("upload"),
		fnUpdateCommand(), fnDeleteCommand(), fnGetCommand(), fnListCommand(), fnInvokeCommand(), fnLogsCommand())
	quietUsage(cmd)
	return cmd
}

// moduleFlag adds -m/--module.
func moduleFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "module", "m", client.DefaultModule, "the function's module")
	cmd.RegisterFlagCompletionFunc("module", completeModules)
}

// metadataFlags are the flags that set a function's metadata.
type metadataFlags struct {
	memory sizeValue
	tag    string
	hosts  []string
	tmo    time.Duration
	noWait bool
}

func (m *metadataFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	m.memory.wholeMiB = true
	f.Var(&m.memory, "memory", "memory the function needs: its memory limit (at most 1GiB), and only workers with that much free run it; "+sizeHelp+" (0: undeclared, the workers' default limit of 128MiB)")
	f.DurationVar(&m.tmo, "timeout", 0, "longest an invocation may run, e.g. 500ms or 30s (0: the platform's default)")
	f.StringArrayVar(&m.hosts, "allow-host", nil, "a host the function may reach over HTTP, as host, host:port or *.domain (repeatable)")
	f.StringVar(&m.tag, "tag", "", "a free label stored with the function")
	f.BoolVar(&m.noWait, "no-wait", false, "answer as soon as the code is stored, without waiting for workers to compile it")
}

// changed reports whether any metadata flag was given.
func (m *metadataFlags) changed(cmd *cobra.Command) bool {
	for _, n := range []string{"memory", "timeout", "allow-host", "tag"} {
		if cmd.Flags().Changed(n) {
			return true
		}
	}
	return false
}

// apply sets the given flags on md.
func (m *metadataFlags) apply(cmd *cobra.Command, md *client.Metadata) error {
	f := cmd.Flags()
	if f.Changed("memory") {
		md.Capacity = m.memory.mib()
	}
	if f.Changed("timeout") {
		if m.tmo < 0 || m.tmo > 0 && m.tmo < time.Millisecond {
			return fmt.Errorf("--timeout must be 0 or at least 1ms, not %s", m.tmo)
		}
		md.TimeoutMS = m.tmo.Milliseconds()
	}
	if f.Changed("allow-host") {
		md.AllowedHosts = nil
		for _, h := range m.hosts {
			for _, part := range strings.Split(h, ",") {
				if part = strings.TrimSpace(part); part != "" {
					md.AllowedHosts = append(md.AllowedHosts, part)
				}
			}
		}
	}
	if f.Changed("tag") {
		md.Tag = m.tag
	}
	return nil
}

func (m *metadataFlags) wait() *bool {
	w := !m.noWait
	return &w
}

// codeExtensions are the files fn create and fn update deploy.
var codeExtensions = []string{"wasm", "js", "mjs", "cjs"}

// readCode reads a function's code: a .wasm file, whose magic number is
// checked so that a wrong file is named before anything is sent, or a
// JavaScript script (.js, .mjs, .cjs), sent as a JavaScript function
// (jsengine.Wrap) that the core compiles to bytecode.
func readCode(path string) ([]byte, error) {
	code, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("the file %s does not exist", path)
		}
		return nil, fmt.Errorf("read the code: %w", err)
	}
	switch filepath.Ext(path) {
	case ".js", ".mjs", ".cjs":
		if bytes.HasPrefix(code, []byte("\x00asm")) {
			return nil, fmt.Errorf("%s is a WebAssembly module, not a script: name it .wasm", path)
		}
		if !utf8.Valid(code) {
			return nil, fmt.Errorf("%s is not a script: it is not UTF-8 text", path)
		}
		return jsengine.Wrap(code), nil
	}
	if !bytes.HasPrefix(code, []byte("\x00asm")) {
		return nil, fmt.Errorf("%s is not a WebAssembly module (it does not start with \\0asm); build one with 'edgefaas fn build', or give a JavaScript script as a .js file", path)
	}
	return code, nil
}

// sendUpload runs an upload with a progress bar on a terminal.
func sendUpload(cmd *cobra.Command, label string, up client.Upload, do func(client.Upload) (client.Function, error)) (client.Function, error) {
	p := newProgress(cmd, label)
	waiting := "waiting for the core"
	if up.WaitForWorkers == nil || *up.WaitForWorkers {
		waiting = "waiting for workers to compile"
	}
	up.Progress = func(sent, total int64, done bool) {
		p.bytes(sent, total, done)
		if done {
			p.spin(waiting)
		}
	}
	f, err := do(up)
	p.done()
	return f, apiError(err)
}

// fnCreateCommand builds `fn create` and its FunLess spelling `fn upload`.
func fnCreateCommand(verb string) *cobra.Command {
	var (
		module string
		md     metadataFlags
		events string
		sinks  string
	)
	short := "Deploy a .wasm file or a .js script as a new function"
	if verb == "upload" {
		short = "Deploy a .wasm file or a .js script as a new function (FunLess's name for create)"
	}
	cmd := &cobra.Command{
		Use:   verb + " NAME FILE.wasm|FILE.js",
		Short: short,
		Long: short + `.

The code is checked by the core (it must compile and export a supported
ABI: funless's __invoke, or a WASI command's _start). A .js, .mjs or .cjs
file is a JavaScript function (ABI js), run in the engine the binary
embeds: the script sets module.exports.fl_main, defines a global
function main, or is an ES module whose default export is the handler;
the core compiles it to the engine's bytecode once, at upload, and a
syntax error is refused with its line and column. On a terminal the
upload shows its progress, then waits for the workers to compile the code
unless --no-wait is given.`,
		Example: fmt.Sprintf(`  edgefaas fn %[1]s hello build/wasm/hello.wasm
  edgefaas fn %[1]s hellojs hello.js
  edgefaas fn %[1]s fetch fetch.wasm -m tools --memory 64 --timeout 5s --allow-host api.example.com`, verb),
		Args: cobra.ExactArgs(2),
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) == 1 {
				return codeExtensions, cobra.ShellCompDirectiveFilterFileExt
			}
			return nil, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			code, err := readCode(args[1])
			if err != nil {
				return err
			}
			up := client.Upload{Name: args[0], Code: code, Filename: filepath.Base(args[1]), WaitForWorkers: md.wait()}
			if events != "" {
				if up.Events, err = readEvents(events); err != nil {
					return err
				}
			}
			if sinks != "" {
				if up.Sinks, err = readSinks(sinks); err != nil {
					return err
				}
			}
			if md.changed(cmd) {
				up.Metadata = &client.Metadata{}
				if err := md.apply(cmd, up.Metadata); err != nil {
					return err
				}
			}
			c, err := newClient(cmd, false)
			if err != nil {
				return err
			}
			f, err := sendUpload(cmd, "uploading "+filepath.Base(args[1]), up, func(up client.Upload) (client.Function, error) {
				return c.CreateFunction(cmd.Context(), module, up)
			})
			if err != nil {
				return err
			}
			return printFunctionChange(cmd, "created", f)
		},
	}
	moduleFlag(cmd, &module)
	md.add(cmd)
	eventsFlag(cmd, &events)
	sinksFlag(cmd, &sinks)
	return cmd
}

// printFunctionChange reports a created or updated function.
func printFunctionChange(cmd *cobra.Command, what string, f client.Function) error {
	if jsonOutput() {
		return printJSON(cmd.OutOrStdout(), f)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%s function %s/%s (version %d, %s ABI, %s)\n",
		what, f.Module, f.Name, f.Version, f.ABI, humanBytes(f.Size))
	return nil
}

func fnUpdateCommand() *cobra.Command {
	var (
		module string
		md     metadataFlags
		events string
		sinks  string
	)
	cmd := &cobra.Command{
		Use:   "update NAME [FILE.wasm|FILE.js]",
		Short: "Replace a function's code and/or change its settings",
		Long: `Replace a function's code and/or change its settings. Settings not given
keep their values; --allow-host replaces the whole list (--allow-host ''
empties it).`,
		Example: `  edgefaas fn update hello build/wasm/hello.wasm
  edgefaas fn update hellojs examples/hellojs/hello.js
  edgefaas fn update hello --timeout 10s
  edgefaas fn update fetch -m tools --allow-host api.example.com --allow-host cdn.example.com`,
		Args:              cobra.RangeArgs(1, 2),
		ValidArgsFunction: completeFunctionThenFile,
		RunE: func(cmd *cobra.Command, args []string) error {
			up := client.Upload{Name: args[0], WaitForWorkers: md.wait()}
			label := "updating " + args[0]
			if len(args) == 2 {
				code, err := readCode(args[1])
				if err != nil {
					return err
				}
				up.Code, up.Filename, label = code, filepath.Base(args[1]), "uploading "+filepath.Base(args[1])
			}
			if cmd.Flags().Changed("events") {
				ev, err := readEvents(events)
				if err != nil {
					return err
				}
				up.Events = ev
			}
			if cmd.Flags().Changed("sinks") {
				sk, err := readSinks(sinks)
				if err != nil {
					return err
				}
				up.Sinks = sk
			}
			if up.Code == nil && !md.changed(cmd) && up.Events == nil && up.Sinks == nil {
				return errors.New("nothing to update: give a .wasm file and/or --memory, --timeout, --allow-host, --tag, --events, --sinks")
			}
			c, err := newClient(cmd, false)
			if err != nil {
				return err
			}
			if md.changed(cmd) {
				cur, err := c.GetFunction(cmd.Context(), module, args[0])
				if err != nil {
					return apiError(err)
				}
				meta := cur.Metadata
				if err := md.apply(cmd, &meta); err != nil {
					return err
				}
				up.Metadata = &meta
			}
			f, err := sendUpload(cmd, label, up, func(up client.Upload) (client.Function, error) {
				return c.UpdateFunction(cmd.Context(), module, args[0], up)
			})
			if err != nil {
				return err
			}
			return printFunctionChange(cmd, "updated", f)
		},
	}
	moduleFlag(cmd, &module)
	md.add(cmd)
	eventsFlag(cmd, &events)
	sinksFlag(cmd, &sinks)
	return cmd
}

func fnDeleteCommand() *cobra.Command {
	var module string
	cmd := &cobra.Command{
		Use:               "delete NAME",
		Aliases:           []string{"rm"},
		Short:             "Delete a function; workers drop their copies",
		Example:           "  edgefaas fn delete hello\n  edgefaas fn delete fetch -m tools",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeFunctions,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := newClient(cmd, false)
			if err != nil {
				return err
			}
			if err := c.DeleteFunction(cmd.Context(), module, args[0]); err != nil {
				return apiError(err)
			}
			if !jsonOutput() {
				fmt.Fprintf(cmd.OutOrStdout(), "deleted function %s/%s\n", module, args[0])
			}
			return nil
		},
	}
	moduleFlag(cmd, &module)
	return cmd
}

func fnGetCommand() *cobra.Command {
	var module string
	cmd := &cobra.Command{
		Use:               "get NAME",
		Aliases:           []string{"show"},
		Short:             "Show a function: its code's hash, ABI, size, version and settings",
		Example:           "  edgefaas fn get hello\n  edgefaas fn get fetch -m tools -o json",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeFunctions,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := fetch(cmd, false, func(c *client.Client, ctx context.Context) (client.Function, error) {
				return c.GetFunction(ctx, module, args[0])
			})
			if err != nil {
				return apiError(err)
			}
			if jsonOutput() {
				return printJSON(cmd.OutOrStdout(), f)
			}
			tw := newTable(cmd.OutOrStdout())
			row := func(k string, v any) { fmt.Fprintf(tw, "%s:\t%v\n", k, v) }
			row("module", f.Module)
			row("name", f.Name)
			row("owner", f.Owner)
			row("abi", f.ABI)
			row("size", fmt.Sprintf("%s (%d bytes)", humanBytes(f.Size), f.Size))
			row("sha256", f.Hash)
			row("version", f.Version)
			row("memory", orDefault(f.Metadata.Capacity, fmt.Sprintf("%d MiB", f.Metadata.Capacity), "undeclared"))
			row("timeout", orDefault(f.Metadata.TimeoutMS, (time.Duration(f.Metadata.TimeoutMS)*time.Millisecond).String(), "platform default"))
			hosts := strings.Join(f.Metadata.AllowedHosts, ", ")
			if hosts == "" {
				hosts = "none"
			}
			row("allowed hosts", hosts)
			if f.Metadata.Tag != "" {
				row("tag", f.Metadata.Tag)
			}
			if len(f.Events) > 0 {
				row("events", string(f.Events))
			}
			if len(f.Sinks) > 0 {
				row("sinks", string(f.Sinks))
			}
			row("created", f.CreatedAt.Local().Format(time.DateTime))
			row("updated", f.UpdatedAt.Local().Format(time.DateTime))
			return tw.Flush()
		},
	}
	moduleFlag(cmd, &module)
	return cmd
}

// orDefault returns set if n is not 0, otherwise unset.
func orDefault(n int64, set, unset string) string {
	if n == 0 {
		return unset
	}
	return set
}

func fnListCommand() *cobra.Command {
	var module string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the functions of a module",
		Example: "  edgefaas fn list\n  edgefaas fn list -m tools -o json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := newClient(cmd, false)
			if err != nil {
				return err
			}
			m, err := c.GetModuleDetails(cmd.Context(), module)
			if err != nil {
				return apiError(err)
			}
			out := cmd.OutOrStdout()
			if jsonOutput() {
				return printJSON(out, m.Functions)
			}
			tw := newTable(out)
			fmt.Fprintln(tw, "NAME\tABI\tSIZE\tVERSION\tUPDATED")
			for _, f := range m.Functions {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", f.Name, f.ABI, humanBytes(f.Size), f.Version, f.UpdatedAt.Local().Format(time.DateTime))
			}
			return tw.Flush()
		},
	}
	moduleFlag(cmd, &module)
	return cmd
}

func fnInvokeCommand() *cobra.Command {
	var (
		module   string
		kv       []string
		raw      string
		async    bool
		callback string
		script   string
	)
	cmd := &cobra.Command{
		Use:     "invoke NAME",
		Aliases: []string{"run", "call"},
		Short:   "Run a function and print its JSON output",
		Long: `Run a function and print its JSON output: indented on a terminal, exactly
as the function wrote it when piped (or with -o json).

Arguments form one JSON object: -j gives it whole (JSON text, @FILE, or - for
standard input), each -a adds a key: -a k=v sets the string "v", -a k:=v
sets the JSON value v (a number, true, an object...).`,
		Example: `  edgefaas fn invoke hello -a name=Ada
  edgefaas fn invoke matrixmult -m bench -j '{"n":100}'
  edgefaas fn invoke hello -j @args.json | jq .message`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeFunctions,
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := invokeArgs(cmd.InOrStdin(), raw, kv)
			if err != nil {
				return err
			}
			c, err := newClient(cmd, false)
			if err != nil {
				return err
			}
			if script != "" && !async && callback == "" {
				out, err := c.InvokeScript(cmd.Context(), module, args[0], body, script)
				if err != nil {
					return apiError(err)
				}
				return printRawJSON(cmd.OutOrStdout(), out, !jsonOutput() && isTerminal(cmd.OutOrStdout()))
			}
			if async || callback != "" {
				id, err := c.InvokeAsyncScript(cmd.Context(), module, args[0], body, callback, script)
				if err != nil {
					return apiError(err)
				}
				if jsonOutput() {
					return printJSON(cmd.OutOrStdout(), map[string]string{"activation_id": id})
				}
				fmt.Fprintln(cmd.OutOrStdout(), id)
				return nil
			}
			out, err := c.Invoke(cmd.Context(), module, args[0], body)
			if err != nil {
				return apiError(err)
			}
			return printRawJSON(cmd.OutOrStdout(), out, !jsonOutput() && isTerminal(cmd.OutOrStdout()))
		},
	}
	moduleFlag(cmd, &module)
	cmd.Flags().StringArrayVarP(&kv, "arg", "a", nil, "an argument, key=value (a string) or key:=json (repeatable)")
	cmd.Flags().StringVarP(&raw, "json", "j", "", "all arguments as a JSON object, @FILE to read it from a file, - from standard input")
	cmd.Flags().BoolVar(&async, "async", false, "queue the call and print its activation id at once (see 'edgefaas activation')")
	cmd.Flags().StringVar(&callback, "callback", "", "with --async: a URL the core POSTs the finished activation record to")
	cmd.Flags().StringVar(&script, "script", "", "place the call by this APP script (see 'edgefaas script')")
	return cmd
}

// invokeArgs builds the args object from -j and -a.
func invokeArgs(stdin io.Reader, raw string, kv []string) (json.RawMessage, error) {
	obj := map[string]json.RawMessage{}
	if raw != "" {
		var text []byte
		switch {
		case raw == "-":
			b, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("read the arguments from standard input: %w", err)
			}
			text = b
		case strings.HasPrefix(raw, "@"):
			b, err := os.ReadFile(raw[1:])
			if err != nil {
				return nil, fmt.Errorf("read the arguments: %w", err)
			}
			text = b
		default:
			text = []byte(raw)
		}
		text = bytes.TrimSpace(text)
		if !json.Valid(text) || len(text) == 0 || text[0] != '{' {
			return nil, errors.New(`-j must be a JSON object, e.g. -j '{"name":"Ada"}'`)
		}
		if len(kv) == 0 {
			return json.RawMessage(text), nil
		}
		if err := json.Unmarshal(text, &obj); err != nil {
			return nil, fmt.Errorf("-j: %w", err)
		}
	}
	for _, a := range kv {
		if k, v, ok := strings.Cut(a, ":="); ok && !strings.Contains(k, "=") {
			if k == "" || !json.Valid([]byte(v)) {
				return nil, fmt.Errorf("-a %s: key:=value needs a key and a JSON value", a)
			}
			obj[k] = json.RawMessage(v)
			continue
		}
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("-a %s: expected key=value or key:=json", a)
		}
		s, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("-a %s: %w", a, err)
		}
		obj[k] = s
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode the arguments: %w", err)
	}
	return out, nil
}

// ---- completion ----

// completionClient is a client with a short deadline for shell completion.
func completionClient(cmd *cobra.Command) (*client.Client, context.Context, context.CancelFunc, bool) {
	c, err := newClient(cmd, false)
	if err != nil {
		return nil, nil, nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	return c, ctx, cancel, true
}

// completeFunctions completes a function name in the -m module.
func completeFunctions(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	c, ctx, cancel, ok := completionClient(cmd)
	if !ok {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer cancel()
	module, _ := cmd.Flags().GetString("module")
	m, err := c.GetModule(ctx, module)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := make([]string, 0, len(m.Functions))
	for _, f := range m.Functions {
		names = append(names, f.Name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}

// completeFunctionThenFile completes a function name, then a .wasm or
// JavaScript file.
func completeFunctionThenFile(cmd *cobra.Command, args []string, s string) ([]string, cobra.ShellCompDirective) {
	if len(args) == 1 {
		return codeExtensions, cobra.ShellCompDirectiveFilterFileExt
	}
	return completeFunctions(cmd, args, s)
}

// completeModules completes a module name.
func completeModules(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
	c, ctx, cancel, ok := completionClient(cmd)
	if !ok {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	defer cancel()
	mods, err := c.ListModules(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := make([]string, 0, len(mods))
	for _, m := range mods {
		names = append(names, m.Name)
	}
	return names, cobra.ShellCompDirectiveNoFileComp
}
