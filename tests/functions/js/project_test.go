package js_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles writes files (relative path → content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestProject: `fn new --lang js` writes FunLess's template, which `fn
// build` bundles and `fn create` deploys; a project that requires npm
// packages (here installed in node_modules by hand, as npm install would:
// a CommonJS package that requires another, and an ES module package)
// runs with them bundled in, and so does an ES module entry; a syntax
// error fails the build with its file, line and column, and a missing
// package says to run npm install.
func TestProject(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "js_project")
	out, err := cli(t, "fn", "new", "js_project", "--lang", "js", "--dir", dir)
	if err != nil || !strings.Contains(out, filepath.Join(dir, "js_project.js")) {
		t.Fatalf("fn new --lang js: %s, %v", out, err)
	}
	if out, err = cli(t, "fn", "build", dir); err != nil || !strings.Contains(out, "(js, ") {
		t.Fatalf("fn build of the template: %s, %v", out, err)
	}
	deployPath(t, "js_project", filepath.Join(dir, "js_project.js"))
	if out, err := invoke(t, "js_project", `{"name":"Ada"}`); err != nil || out != `{"message":"Hello, Ada!"}` {
		t.Fatalf("the template: %s, %v", out, err)
	}

	writeFiles(t, dir, map[string]string{
		"index.js": `const greet = require("greet");
const { shout } = require("shout-esm");
module.exports.fl_main = async function (input) {
  return { message: shout(greet(input.name)) };
};
`,
		"node_modules/greet/package.json": `{"name":"greet","version":"1.0.0","main":"lib/greet.js","dependencies":{"pad":"1.0.0"}}`,
		"node_modules/greet/lib/greet.js": `const pad = require("pad");
module.exports = (name) => "Hello, " + pad(name || "World") + "!";
`,
		"node_modules/pad/package.json":       `{"name":"pad","version":"1.0.0"}`,
		"node_modules/pad/index.js":           `module.exports = (s) => "<" + s + ">";`,
		"node_modules/shout-esm/package.json": `{"name":"shout-esm","version":"1.0.0","type":"module","exports":"./shout.js"}`,
		"node_modules/shout-esm/shout.js":     `export const shout = (s) => s.toUpperCase();`,
	})
	if out, err = cli(t, "fn", "build", dir); err != nil {
		t.Fatalf("fn build with packages: %s, %v", out, err)
	}
	if _, err := cli(t, "fn", "update", "js_project", filepath.Join(dir, "js_project.js")); err != nil {
		t.Fatalf("fn update: %v", err)
	}
	if out, err := invoke(t, "js_project", `{"name":"Ada"}`); err != nil || out != `{"message":"HELLO, <ADA>!"}` {
		t.Fatalf("the bundle with its packages: %s, %v", out, err)
	}

	// An ES module entry (package.json's main) keeps its default export.
	writeFiles(t, dir, map[string]string{
		"main.mjs":     "import { shout } from \"shout-esm\";\nexport default async (input) => shout(input.name);\n",
		"package.json": `{"name":"js_project","version":"1.0.0","private":true,"main":"main.mjs"}`,
	})
	if out, err = cli(t, "fn", "build", dir); err != nil {
		t.Fatalf("fn build of an ES module: %s, %v", out, err)
	}
	if _, err := cli(t, "fn", "update", "js_project", filepath.Join(dir, "js_project.js")); err != nil {
		t.Fatalf("fn update: %v", err)
	}
	if out, err := invoke(t, "js_project", `{"name":"Ada"}`); err != nil || out != `"ADA"` {
		t.Fatalf("the ES module's bundle: %s, %v", out, err)
	}

	writeFiles(t, dir, map[string]string{
		"index.js":     "module.exports.fl_main = function (input) {\n  return { a: };\n};\n",
		"package.json": `{"name":"js_project","version":"1.0.0","private":true,"main":"index.js"}`,
	})
	if _, err := cli(t, "fn", "build", dir); err == nil || !strings.Contains(err.Error(), "index.js:2:15:") {
		t.Fatalf("fn build of a syntax error: %v; want index.js:2:15", err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"index.js": "const _ = require(\"lodash\");\nmodule.exports.fl_main = () => _.VERSION;\n"})
	if _, err := cli(t, "fn", "build", dir); err == nil || !strings.Contains(err.Error(), `Could not resolve "lodash"`) || !strings.Contains(err.Error(), "npm install") {
		t.Fatalf("fn build without node_modules: %v; want a hint to run npm install", err)
	}
}
