package lint

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The documents whose repository paths must exist, relative to the root.
// docs/*.md is globbed so a new document is covered without editing this.
var docFiles = []string{"README.md", "patches/README.md", "docs/*.md"}

// buildTime lists the top-level folders that only exist after a build: a
// path under them is written by make (build/edgefaas, build/wasm/*.wasm,
// build/patched-by-make-deps/..., dist/...) and is absent from a fresh
// clone, so the docs may name it without it being in the repository.
var buildTime = map[string]bool{"build": true, "dist": true}

// movedUnderInternal lists folders that were at the top level before the
// implementation moved under internal/ (commit 69e15dd). A doc path that
// starts with one of them is stale: the folder is not at the root any more,
// so the top-level rule alone would not look at it.
var movedUnderInternal = map[string]bool{
	"actors": true, "activations": true, "nodes": true, "sinks": true,
	"storage": true, "supervisors": true, "triggers": true, "wasm": true,
}

// knownExt are the extensions that make a backticked token without a slash
// look like a file name (it is checked only if it names a root file).
var knownExt = map[string]bool{
	".go": true, ".md": true, ".sh": true, ".c": true, ".h": true,
	".wasm": true, ".json": true, ".yaml": true, ".yml": true,
	".patch": true, ".service": true, ".txt": true, ".mod": true,
	".sum": true, ".env": true, ".csv": true, ".png": true, ".pprof": true,
}

var (
	backticked = regexp.MustCompile("`([^`\n]+)`")
	mdLink     = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	lineSuffix = regexp.MustCompile(`:[0-9]+(-[0-9]+)?$`)
)

// repoRoot walks up from the test's directory to the folder holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// topLevel lists the names at the repository's root, hidden ones excluded.
func topLevel(root string) (map[string]bool, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("read the repository root: %w", err)
	}
	names := map[string]bool{}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			names[e.Name()] = true
		}
	}
	for name := range buildTime {
		names[name] = true
	}
	return names, nil
}

// placeholder matches what stands for a name in a documented path:
// `<name>`, `{a,b}`, `...`, `…` and glob characters.
var placeholder = regexp.MustCompile(`<|\{|\.\.\.|…|\*|\?|\[`)

// candidate turns a backticked token into the repository path it names, or
// "" when it does not look like one. A Go reference such as
// `internal/core/cluster.Invoker` names its package's folder.
func candidate(token string, top map[string]bool) string {
	p := strings.TrimSpace(token)
	if p == "" || strings.ContainsAny(p, " \t\"'=,;()|") {
		return "" // a command, an expression or prose, not a path
	}
	p, _, _ = strings.Cut(p, "#") // a section of a document names the document
	p = strings.TrimPrefix(p, "./")
	p = lineSuffix.ReplaceAllString(p, "")
	if strings.HasPrefix(p, "/") || strings.Contains(p, "://") {
		return "" // an absolute path on a machine, a URL or an API route
	}
	first, _, hasSlash := strings.Cut(p, "/")
	if !top[first] && !movedUnderInternal[first] {
		return ""
	}
	if placeholder.MatchString(p) {
		return p // a pattern: exists checks its literal part
	}
	p = strings.TrimSuffix(p, "/")
	last := p[strings.LastIndex(p, "/")+1:]
	if dot := strings.Index(last, "."); dot > 0 && !knownExt[filepath.Ext(last)] {
		p = p[:len(p)-len(last)+dot] // a Go identifier after a package path
	} else if !hasSlash && !top[p] {
		return ""
	}
	return p
}

// exists says whether a repository path exists. A path with placeholders
// is checked up to the last folder before the first one; a glob must match
// something.
func exists(root, p string) (bool, error) {
	if loc := placeholder.FindStringIndex(p); loc != nil {
		if c := p[loc[0]]; c == '*' || c == '?' || c == '[' {
			if !strings.Contains(p, "...") && !strings.ContainsAny(p, "<{…") {
				m, err := filepath.Glob(filepath.Join(root, p))
				return len(m) > 0, err
			}
		}
		p = p[:loc[0]]
		p = p[:strings.LastIndex(p, "/")+1] // the folder that holds the placeholder
		if p == "" {
			return true, nil
		}
	}
	_, err := os.Stat(filepath.Join(root, filepath.FromSlash(p)))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

// missingPaths returns "file:line: path" for every repository path named in
// text (backticked, or a relative link target) that does not exist. Fenced
// code blocks are skipped: they hold commands and diagrams, not references.
func missingPaths(root, docPath, text string, top map[string]bool) ([]string, error) {
	var missing []string
	fenced := false
	for n, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		var paths []string
		for _, m := range backticked.FindAllStringSubmatch(line, -1) {
			if p := candidate(m[1], top); p != "" {
				paths = append(paths, p)
			}
		}
		for _, m := range mdLink.FindAllStringSubmatch(line, -1) {
			target, _, _ := strings.Cut(m[1], "#")
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			// A link is relative to its document, not to the root.
			rel := filepath.ToSlash(filepath.Join(filepath.Dir(docPath), target))
			paths = append(paths, rel)
		}
		for _, p := range paths {
			first, _, _ := strings.Cut(p, "/")
			if buildTime[first] {
				continue
			}
			ok, err := exists(root, p)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %s: %w", docPath, n+1, p, err)
			}
			if !ok {
				missing = append(missing, fmt.Sprintf("%s:%d: %s", docPath, n+1, p))
			}
		}
	}
	return missing, nil
}

// TestDocPathsExist: every repository path the documents name exists, so a
// move of the tree cannot leave the docs pointing at folders that are gone.
func TestDocPathsExist(t *testing.T) {
	root := repoRoot(t)
	top, err := topLevel(root)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, pattern := range docFiles {
		m, err := filepath.Glob(filepath.Join(root, pattern))
		if err != nil {
			t.Fatalf("glob %s: %v", pattern, err)
		}
		if len(m) == 0 {
			t.Fatalf("no document matches %s", pattern)
		}
		files = append(files, m...)
	}
	sort.Strings(files)
	var missing []string
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("read %s: %v", f, err)
		}
		rel, err := filepath.Rel(root, f)
		if err != nil {
			t.Fatalf("relative path of %s: %v", f, err)
		}
		m, err := missingPaths(root, filepath.ToSlash(rel), string(text), top)
		if err != nil {
			t.Fatal(err)
		}
		missing = append(missing, m...)
	}
	if len(missing) > 0 {
		t.Errorf("%d paths named in the docs do not exist:\n%s", len(missing), strings.Join(missing, "\n"))
	}
}

// TestMissingPathsCatches: the scanner reports a path that does not exist,
// a stale pre-internal/ path and a broken link, and accepts real paths,
// placeholders, globs, build outputs, Go references, routes and commands.
func TestMissingPathsCatches(t *testing.T) {
	root := repoRoot(t)
	top, err := topLevel(root)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join([]string{
		"Real: `go.mod`, `internal/lint/docs_test.go`, `internal/core/cluster.Invoker`, `tests/*`, `internal/core/...`,",
		"`patches/<module>@<version>/`, `internal/wasm/slots.go:42`, `docs/architecture.md#the-tree`, `nodes.Core.Invoke`, [a link](../README.md).",
		"Built: `build/edgefaas`, `dist/edgefaas-linux-arm64`, `./build/patched-by-make-deps/...`.",
		"Not paths: `/v1/fn/:mod`, `f/<module>/<function>`, `go test ./...`, `DATA_DIR/tokens`, `hostsig.go`.",
		"Missing: `internal/nope/gone.go` and `wasm/slots.go` and [gone](missing.md).",
		"Stale patterns: `actors/...`, `internal/gone/<name>.go`, `internal/gone/*.go`.",
		"```",
		"internal/also-gone.go `internal/fenced/gone.go`",
		"```",
	}, "\n")
	got, err := missingPaths(root, "docs/x.md", text, top)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"docs/x.md:5: internal/nope/gone.go",
		"docs/x.md:5: wasm/slots.go",
		"docs/x.md:5: docs/missing.md",
		"docs/x.md:6: actors/...",
		"docs/x.md:6: internal/gone/<name>.go",
		"docs/x.md:6: internal/gone/*.go",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("missing paths:\ngot  %q\nwant %q", got, want)
	}
}

// rationaleCite matches a citation of a RATIONALE.md section.
var rationaleCite = regexp.MustCompile(`RATIONALE\.md#([A-Za-z0-9_-]+)`)

// anchors returns the GitHub anchors of a markdown document's headings:
// lower case, spaces to hyphens, punctuation other than - and _ dropped.
func anchors(text string) map[string]bool {
	a := map[string]bool{}
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.ToLower(strings.TrimSpace(strings.TrimLeft(line, "#")))
		var b strings.Builder
		for _, r := range h {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
				b.WriteRune(r)
			}
		}
		a[b.String()] = true
	}
	return a
}

// TestRationaleCitationsExist: every `docs/RATIONALE.md#<section>` cited in
// Go code or in the docs names a heading of docs/RATIONALE.md, so a
// renamed section cannot leave comments pointing nowhere.
func TestRationaleCitationsExist(t *testing.T) {
	root := repoRoot(t)
	text, err := os.ReadFile(filepath.Join(root, "docs", "RATIONALE.md"))
	if err != nil {
		t.Fatalf("read docs/RATIONALE.md: %v", err)
	}
	have := anchors(string(text))
	var broken []string
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			// build/ holds dependencies' copies; bench/results/ are
			// historical reports, left as they were written.
			if strings.HasPrefix(d.Name(), ".") && rel != "." || rel == "build" || rel == "bench/results" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, ".md") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", rel, err)
		}
		for n, line := range strings.Split(string(b), "\n") {
			for _, m := range rationaleCite.FindAllStringSubmatch(line, -1) {
				if !have[m[1]] {
					broken = append(broken, fmt.Sprintf("%s:%d: #%s", rel, n+1, m[1]))
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(broken) > 0 {
		t.Errorf("%d citations of docs/RATIONALE.md name no section:\n%s", len(broken), strings.Join(broken, "\n"))
	}
}
