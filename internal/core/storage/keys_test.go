package storage

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// layoutConsts returns the string constants of keys.go: the key layout.
func layoutConsts(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "keys.go", nil, 0)
	if err != nil {
		t.Fatalf("parse keys.go: %v", err)
	}
	out := map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					continue
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatalf("keys.go: %s: %v", name.Name, err)
				}
				out[name.Name] = v
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("keys.go declares no layout constants")
	}
	return out
}

// docLayout returns the first field of each line of doc.go's key layout
// list (the indented lines of the package comment).
func docLayout(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatalf("read doc.go: %v", err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "//\t"); ok {
			out = append(out, strings.Fields(rest)[0])
		}
	}
	return out
}

// matches reports whether doc entry e describes layout value v: a whole
// key exactly, a prefix (ending in "/") followed by a <placeholder>.
func matches(e, v string) bool {
	if !strings.HasSuffix(v, "/") {
		return e == v
	}
	rest, ok := strings.CutPrefix(e, v)
	return ok && strings.HasPrefix(rest, "<")
}

// TestDocListsEveryKey checks that doc.go's key layout and keys.go's
// constants describe the same keys, each in both directions.
func TestDocListsEveryKey(t *testing.T) {
	consts := layoutConsts(t)
	doc := docLayout(t)
	for name, v := range consts {
		found := false
		for _, e := range doc {
			found = found || matches(e, v)
		}
		if !found {
			t.Errorf("keys.go %s = %q is not in doc.go's key layout", name, v)
		}
	}
	for _, e := range doc {
		found := false
		for _, v := range consts {
			found = found || matches(e, v)
		}
		if !found {
			t.Errorf("doc.go lists %q, which no constant in keys.go spells", e)
		}
	}
}

// TestKeysOnlyInKeysGo checks that no other file of the package spells a
// key: a string literal shaped like one ("x/...") outside imports.
func TestKeysOnlyInKeysGo(t *testing.T) {
	keyLike := regexp.MustCompile(`^[a-z]+/`)
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if name == "keys.go" || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		imports := map[*ast.BasicLit]bool{}
		for _, imp := range f.Imports {
			imports[imp.Path] = true
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING || imports[lit] {
				return true
			}
			if v, err := strconv.Unquote(lit.Value); err == nil && keyLike.MatchString(v) {
				t.Errorf("%s: key-shaped literal %q belongs in keys.go", fset.Position(lit.Pos()), v)
			}
			return true
		})
	}
}
