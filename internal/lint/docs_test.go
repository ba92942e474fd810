package lint

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"unicode"
)

// The documents whose repository paths must exist, relative to the root.
// docs/*.md is globbed so a new document is covered without editing this.
var docFiles = []string{"README.md", "SECURITY.md", "CHANGELOG.md", "patches/README.md", "docs/*.md", "docs/*/*.md"}

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

// TestRationaleCitationsExist: every `docs/RATIONALE.md#<section>` cited in
// Go code or in the docs names a heading of docs/RATIONALE.md, so a
// renamed section cannot leave comments pointing nowhere.
func TestRationaleCitationsExist(t *testing.T) {
	root := repoRoot(t)
	text, err := os.ReadFile(filepath.Join(root, "docs", "RATIONALE.md"))
	if err != nil {
		t.Fatalf("read docs/RATIONALE.md: %v", err)
	}
	have := headingAnchors(string(text))
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

// linkedDocs are the documents whose relative links must resolve: the
// root's markdown files a reader meets first, patches/README.md, and every
// markdown file under docs/ (walked, so docs/cli/ and any new folder are
// covered without editing this).
var linkedDocs = []string{"README.md", "SECURITY.md", "CHANGELOG.md", "patches/README.md"}

// maxReadmeLines bounds README.md: it is the first hour's page, and the
// topics live under docs/.
const maxReadmeLines = 200

var (
	// refLink matches a reference-style link definition, `[x]: target`.
	refLink = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*(\S+)`)
	// codeSpan matches an inline code span, whose text is not markup.
	codeSpan = regexp.MustCompile("`+[^`]*`+")
	// headingLink matches a link inside a heading: its text is what counts.
	headingLink = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	// atxHeading matches a markdown heading line and captures its text.
	atxHeading = regexp.MustCompile(`^ {0,3}#{1,6}(?:\s+(.*?))?(?:\s+#+)?\s*$`)
	// lineAnchor is GitHub's anchor for lines of a non-markdown file.
	lineAnchor = regexp.MustCompile(`^L[0-9]+(-L[0-9]+)?$`)
)

// fence reports whether a line opens or closes a fenced code block.
func fence(line string) bool {
	t := strings.TrimSpace(line)
	return strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~")
}

// slug is GitHub's anchor for a heading's text: links reduced to their
// text, lower case, spaces to hyphens, and every character that is not a
// letter, a mark, a number, a connector (_) or a hyphen dropped.
func slug(heading string) string {
	h := strings.ToLower(headingLink.ReplaceAllString(strings.TrimSpace(heading), "$1"))
	var b strings.Builder
	for _, r := range h {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsNumber(r) || unicode.Is(unicode.Pc, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// headingAnchors returns the anchors GitHub gives a markdown document's
// headings. Lines in fenced code blocks are not headings; a repeated
// anchor gets -1, -2, ... as on GitHub.
func headingAnchors(text string) map[string]bool {
	a := map[string]bool{}
	seen := map[string]int{}
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if fence(line) {
			fenced = !fenced
			continue
		}
		m := atxHeading.FindStringSubmatch(line)
		if fenced || m == nil {
			continue
		}
		s := slug(m[1])
		if n := seen[s]; n > 0 {
			a[fmt.Sprintf("%s-%d", s, n)] = true
		} else {
			a[s] = true
		}
		seen[s]++
	}
	return a
}

// linkChecker resolves relative links against the repository, reading
// each target document's anchors once.
type linkChecker struct {
	root    string
	anchors map[string]map[string]bool // by repository path
}

// anchorsOf returns the heading anchors of the markdown file at rel.
func (c *linkChecker) anchorsOf(rel string) (map[string]bool, error) {
	if a, ok := c.anchors[rel]; ok {
		return a, nil
	}
	b, err := os.ReadFile(filepath.Join(c.root, filepath.FromSlash(rel)))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", rel, err)
	}
	a := headingAnchors(string(b))
	c.anchors[rel] = a
	return a, nil
}

// brokenLinks returns "file:line: target: why" for every relative link in
// text (inline `[x](target)`, images, and `[x]: target` definitions) whose
// file does not exist or whose #anchor names no heading of the target.
// External links (a scheme such as https:, or mailto:) are not fetched:
// nothing leaves the machine. Code blocks and code spans are skipped.
func (c *linkChecker) brokenLinks(docPath, text string) ([]string, error) {
	var broken []string
	fenced := false
	for n, line := range strings.Split(text, "\n") {
		if fence(line) {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		var targets []string
		if m := refLink.FindStringSubmatch(line); m != nil {
			targets = append(targets, strings.Trim(m[1], "<>"))
		}
		for _, m := range mdLink.FindAllStringSubmatch(codeSpan.ReplaceAllString(line, ""), -1) {
			targets = append(targets, m[1])
		}
		for _, target := range targets {
			why, err := c.resolve(docPath, text, target)
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %s: %w", docPath, n+1, target, err)
			}
			if why != "" {
				broken = append(broken, fmt.Sprintf("%s:%d: %s: %s", docPath, n+1, target, why))
			}
		}
	}
	return broken, nil
}

// resolve says why a link target in docPath (whose text is text) does not
// resolve, or "" when it does.
func (c *linkChecker) resolve(docPath, text, target string) (string, error) {
	if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
		return "", nil
	}
	p, frag, _ := strings.Cut(target, "#")
	p, err := url.PathUnescape(p)
	if err != nil {
		return "not a valid path", nil
	}
	rel := docPath
	if p != "" {
		if strings.HasPrefix(p, "/") { // GitHub: from the repository's root
			rel = path.Clean(strings.TrimPrefix(p, "/"))
		} else {
			rel = path.Join(path.Dir(docPath), p)
		}
		if rel == ".." || strings.HasPrefix(rel, "../") {
			return "outside the repository", nil
		}
		first, _, _ := strings.Cut(rel, "/")
		if buildTime[first] {
			return "", nil // written by make, absent from a clone
		}
		if _, err := os.Stat(filepath.Join(c.root, filepath.FromSlash(rel))); errors.Is(err, os.ErrNotExist) {
			return "no such file", nil
		} else if err != nil {
			return "", err
		}
	}
	if frag == "" {
		return "", nil
	}
	if !strings.HasSuffix(rel, ".md") {
		if lineAnchor.MatchString(frag) {
			return "", nil
		}
		return "an anchor into a file that is not markdown", nil
	}
	var have map[string]bool
	if rel == docPath {
		have = headingAnchors(text)
	} else if have, err = c.anchorsOf(rel); err != nil {
		return "", err
	}
	if !have[frag] {
		return fmt.Sprintf("no heading with the anchor #%s in %s", frag, rel), nil
	}
	return "", nil
}

// linkedDocPaths lists linkedDocs and every markdown file under docs/,
// relative to root.
func linkedDocPaths(root string) ([]string, error) {
	files := append([]string(nil), linkedDocs...)
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

// TestDocLinksResolve: every relative link in the README, SECURITY.md,
// CHANGELOG.md and the docs points at a file that exists, and its #anchor
// at a heading of that file, so moving or renaming a page or a section
// cannot leave links pointing nowhere.
func TestDocLinksResolve(t *testing.T) {
	root := repoRoot(t)
	files, err := linkedDocPaths(root)
	if err != nil {
		t.Fatalf("list the docs: %v", err)
	}
	c := &linkChecker{root: root, anchors: map[string]map[string]bool{}}
	var broken []string
	for _, f := range files {
		text, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			t.Fatalf("read %s: %v", f, err) // a listed root document went missing
		}
		b, err := c.brokenLinks(f, string(text))
		if err != nil {
			t.Fatal(err)
		}
		broken = append(broken, b...)
	}
	if len(broken) > 0 {
		t.Errorf("%d links in the docs do not resolve:\n%s", len(broken), strings.Join(broken, "\n"))
	}
}

// TestBrokenLinksCatches: the checker reports a missing file, a missing
// anchor in another document and in the same one, a link out of the
// repository and an anchor into a non-markdown file; it accepts real
// files, folders, anchors, line anchors, build outputs and external
// links, and ignores code.
func TestBrokenLinksCatches(t *testing.T) {
	root := repoRoot(t)
	c := &linkChecker{root: root, anchors: map[string]map[string]bool{}}
	text := strings.Join([]string{
		"# A page",
		"## Second part",
		"Good: [r](RATIONALE.md#why-pebble), [i](install.md#5-node-credentials-and-tls), [self](#second-part), [dir](../internal/lint),",
		"[readme](../README.md), [go](../go.mod#L1), [built](../build/edgefaas), [web](https://example.com/x#y), [m](mailto:a@b), ![img](../bench/results/2026-11-26-47f6e27/rss.png).",
		"Broken: [gone](missing.md), [anchor](install.md#no-such-part), [self](#third-part), [out](../../etc/passwd).",
		"[frag](../go.mod#module) `[code](nope.md)`",
		"[def]: ../nope/README.md",
		"```",
		"[fenced](gone.md)",
		"```",
	}, "\n")
	got, err := c.brokenLinks("docs/x.md", text)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"docs/x.md:5: missing.md: no such file",
		"docs/x.md:5: install.md#no-such-part: no heading with the anchor #no-such-part in docs/install.md",
		"docs/x.md:5: #third-part: no heading with the anchor #third-part in docs/x.md",
		"docs/x.md:5: ../../etc/passwd: outside the repository",
		"docs/x.md:6: ../go.mod#module: an anchor into a file that is not markdown",
		"docs/x.md:7: ../nope/README.md: no such file",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("broken links:\ngot  %q\nwant %q", got, want)
	}
}

// TestSlug: headings get GitHub's anchors.
func TestSlug(t *testing.T) {
	for heading, want := range map[string]string{
		"Why FunLess compatibility?":               "why-funless-compatibility",
		"5. Node credentials and TLS":              "5-node-credentials-and-tls",
		"The core's assembly (`internal/core`)":    "the-cores-assembly-internalcore",
		"Known, not fixed":                         "known-not-fixed",
		"Timeouts: an inline countdown":            "timeouts-an-inline-countdown",
		"What `capacity` means":                    "what-capacity-means",
		"See [the tree](docs/architecture.md)":     "see-the-tree",
		"Über ×2 — edge_case":                      "über-2--edge_case",
		"Why the node CA, join tokens and egress?": "why-the-node-ca-join-tokens-and-egress",
	} {
		if got := slug(heading); got != want {
			t.Errorf("slug(%q) = %q, want %q", heading, got, want)
		}
	}
	a := headingAnchors("# Flags\n```\n# not a heading\n```\n## Flags\n### Flags ##\n#nospace\n")
	for _, want := range []string{"flags", "flags-1", "flags-2"} {
		if !a[want] {
			t.Errorf("headingAnchors: no %q in %v", want, a)
		}
	}
	if a["not-a-heading"] || len(a) != 3 {
		t.Errorf("headingAnchors: got %v, want flags, flags-1, flags-2", a)
	}
}

// TestReadmeLength: README.md stays within maxReadmeLines lines.
func TestReadmeLength(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatalf("read README.md: %v", err)
	}
	lines := strings.Count(string(b), "\n")
	if len(b) > 0 && b[len(b)-1] != '\n' {
		lines++
	}
	if lines > maxReadmeLines {
		t.Errorf("README.md has %d lines, more than %d: move the detail to a page under docs/", lines, maxReadmeLines)
	}
}
