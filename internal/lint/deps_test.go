package lint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
)

// rules are the module's import rules, checked against every package's
// non-test imports (a test may reach across: the rules are about what
// ships). Paths are relative to the module; "x/..." is x and every
// package under it, "..." is every package of the module. A package in
// from, and not in except, may not import a package in forbid unless it
// is in allow. Only packages of this module are checked: the standard
// library, dependencies and the Go SDK (a module of its own) are not.
var rules = []rule{
	{
		why:    "the core and the worker meet only where a node is assembled (internal/nodes, cmd/...), so no core actor imports a worker actor",
		from:   []string{"internal/core/..."},
		forbid: []string{"internal/worker/..."},
	},
	{
		why:    "the worker and the core meet only where a node is assembled (internal/nodes, cmd/...), so no worker actor imports a core actor",
		from:   []string{"internal/worker/..."},
		forbid: []string{"internal/core/..."},
	},
	{
		why:    "the runtime runs a module and knows nothing of the cluster, actors, nodes, storage or HTTP serving",
		from:   []string{"internal/wasm/..."},
		forbid: []string{"internal/actors/...", "internal/core/...", "internal/worker/...", "internal/nodes", "http/..."},
	},
	{
		why:    "the core runs no function: of its packages only its assembly (upload inspection), the API (the runtime's limits and module facts, to validate uploads) and the invocation service (the runtime's log-truncation marker) name the runtime",
		from:   []string{"internal/core/..."},
		except: []string{"internal/core", "internal/core/api", "internal/core/invocation"},
		forbid: []string{"internal/wasm/..."},
	},
	{
		why:    "the core performs sinks and callbacks with the egress policy: through it, it would load the runtime",
		from:   []string{"internal/egress", "internal/outbound"},
		forbid: []string{"internal/wasm/..."},
	},
	{
		why:    "packages shared by the core and the worker belong to neither, nor to a node's assembly",
		from:   shared,
		forbid: []string{"internal/core/...", "internal/worker/...", "internal/nodes"},
	},
	{
		why:    "the seam between the API and the cluster names what the core needs, not how actors, nodes or the runtime provide it",
		from:   []string{"internal/core/cluster"},
		forbid: []string{"internal/actors/...", "internal/core/actors/...", "internal/worker/...", "internal/wasm/...", "internal/nodes", "internal/core/api"},
	},
	{
		why:  "the HTTP API is an adapter: it invokes through the invocation service and reaches actors, activations, sinks and triggers only through the core's seams (the event and sink specifications it validates are plain packages of their own)",
		from: []string{"internal/core/api"},
		forbid: []string{"internal/actors/...", "internal/core/actors/...", "internal/worker/...",
			"internal/core/activations", "internal/core/sinks", "internal/core/triggers", "internal/core/triggers/broker", "internal/nodes", "internal/wasm/inspectproc"},
	},
	{
		why:    "a node's assembly does not serve HTTP: the core's assembly hands the API what it needs",
		from:   []string{"internal/nodes"},
		forbid: []string{"internal/core/api"},
	},
	{
		why:    "test harnesses do not ship: only the benchmark suite and other harnesses use them outside tests",
		from:   []string{"..."},
		except: []string{"internal/testing/...", "internal/bench", "cmd/edgefaas-bench"},
		forbid: []string{"internal/testing/..."},
	},
	{
		why:    "examples are functions built to WebAssembly, not libraries",
		from:   []string{"..."},
		forbid: []string{"examples/..."},
	},
	{
		why:    "the public HTTP client stands alone: an importer gets no internal package with it",
		from:   []string{"http/client/..."},
		forbid: []string{"..."},
		allow:  []string{"http/client/..."},
	},
}

// shared are the packages both roles use, directly under internal/.
// (internal/core/cluster is the core's seam, with a rule of its own.)
var shared = []string{
	"internal/actors/wire", "internal/actors/send", "internal/actors/discovery", "internal/actors/trust",
	"internal/egress", "internal/outbound", "internal/supervisors", "internal/membudget", "internal/ergonode",
	"internal/syncfile", "internal/matrix", "internal/version", "internal/wasm/...",
}

// rule forbids some imports to some packages; why says what it protects.
type rule struct {
	why    string
	from   []string
	except []string
	forbid []string
	allow  []string
}

// match reports whether the module-relative package path pkg matches any
// of the patterns.
func match(patterns []string, pkg string) bool {
	for _, p := range patterns {
		switch {
		case p == "...":
			return true
		case strings.HasSuffix(p, "/..."):
			if base := strings.TrimSuffix(p, "/..."); pkg == base || strings.HasPrefix(pkg, base+"/") {
				return true
			}
		case p == pkg:
			return true
		}
	}
	return false
}

// check returns every import in graph (package → its imports, both
// module-relative) that a rule forbids, sorted, one line each.
func check(graph map[string][]string, rules []rule) []string {
	var bad []string
	for pkg, imports := range graph {
		for _, r := range rules {
			if !match(r.from, pkg) || match(r.except, pkg) {
				continue
			}
			for _, imp := range imports {
				if imp != pkg && match(r.forbid, imp) && !match(r.allow, imp) {
					bad = append(bad, fmt.Sprintf("%s imports %s: %s", pkg, imp, r.why))
				}
			}
		}
	}
	sort.Strings(bad)
	return bad
}

// loadGraph lists the module's packages with the go command and returns
// each one's non-test imports of the module's own packages.
func loadGraph(t *testing.T) map[string][]string {
	t.Helper()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	cmd := exec.Command("go", "list", "-json=ImportPath,Module,Imports,Error", "./...")
	cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./... in %s: %v\n%s", cmd.Dir, err, stderr.Bytes())
	}
	type pkg struct {
		ImportPath string
		Module     struct{ Path string }
		Imports    []string
		Error      *struct{ Err string }
	}
	var pkgs []pkg
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		if p.Error != nil {
			t.Fatalf("go list: %s: %s", p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list ./... found no package")
	}
	module := pkgs[0].Module.Path
	rel := func(path string) string { return strings.TrimPrefix(path, module+"/") }
	ours := map[string]bool{}
	for _, p := range pkgs {
		ours[p.ImportPath] = true
	}
	graph := map[string][]string{}
	for _, p := range pkgs {
		imports := []string{}
		for _, imp := range p.Imports {
			if ours[imp] {
				imports = append(imports, rel(imp))
			}
		}
		graph[rel(p.ImportPath)] = imports
	}
	return graph
}

// TestImportRules checks the module's packages against rules.
func TestImportRules(t *testing.T) {
	graph := loadGraph(t)
	for _, v := range check(graph, rules) {
		t.Error(v)
	}
	// A pattern that names no package is a rule gone stale after a move.
	// (An exception may name a package still to come.)
	pkgs := make([]string, 0, len(graph))
	for p := range graph {
		pkgs = append(pkgs, p)
	}
	for _, r := range rules {
		for _, p := range slices.Concat(r.from, r.forbid) {
			if !slices.ContainsFunc(pkgs, func(pkg string) bool { return match([]string{p}, pkg) }) {
				t.Errorf("the rule %q names %s, which matches no package of the module", r.why, p)
			}
		}
	}
}

// TestCheck shows that check reports a forbidden import and only that.
func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name  string
		graph map[string][]string
		want  []string
	}{{
		name: "allowed",
		graph: map[string][]string{
			"cmd/edgefaas":                  {"internal/nodes", "internal/core/api", "http/client"},
			"internal/nodes":                {"internal/core/actors/invoker", "internal/worker/actors/runner", "internal/wasm"},
			"internal/core/actors/invoker":  {"internal/actors/wire", "internal/core/cluster"},
			"internal/worker/actors/runner": {"internal/actors/wire", "internal/wasm"},
			"internal/wasm":                 {"internal/outbound"},
			"internal/bench":                {"internal/testing/testmodules", "http/client"},
			"http/client":                   {},
		},
	}, {
		name: "a core actor imports a worker actor",
		graph: map[string][]string{
			"internal/core/actors/invoker":  {"internal/actors/wire", "internal/worker/actors/runner"},
			"internal/worker/actors/runner": {"internal/actors/wire"},
		},
		want: []string{"internal/core/actors/invoker imports internal/worker/actors/runner"},
	}, {
		name: "the runtime imports a node's assembly and a harness",
		graph: map[string][]string{
			"internal/wasm": {"internal/outbound", "internal/nodes", "internal/testing/testmodules"},
		},
		// Two rules forbid the first import (the runtime's, and the shared
		// packages'); each reports it.
		want: []string{
			"internal/wasm imports internal/nodes",
			"internal/wasm imports internal/nodes",
			"internal/wasm imports internal/testing/testmodules",
		},
	}, {
		name: "the public client imports an internal package",
		graph: map[string][]string{
			"http/client": {"http/client/internal/x", "internal/core/cluster"},
		},
		want: []string{"http/client imports internal/core/cluster"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			got := check(tc.graph, rules)
			for i := range got {
				got[i], _, _ = strings.Cut(got[i], ":")
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("check =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}
