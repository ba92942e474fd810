// Package jsbuild makes one script of a JavaScript function project: it
// bundles the project's entry and every package it requires or imports
// from node_modules with esbuild (its Go library, in this process), into
// a CommonJS script for the engine internal/jsengine embeds. It also
// writes the project template (FunLess's JavaScript template shape).
package jsbuild

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

// Target is the language level the engine runs (QuickJS 2021-03-27:
// ES2020 without BigInt); esbuild lowers newer syntax to it.
const Target = api.ES2020

// IsProject reports whether dir holds a JavaScript project: a
// package.json, or an index.js or index.mjs.
func IsProject(dir string) bool {
	for _, f := range []string{"package.json", "index.js", "index.mjs"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return true
		}
	}
	return false
}

// Entry finds the project's entry file: package.json's "main", else
// index.js, else index.mjs.
func Entry(dir string) (string, error) {
	if b, err := os.ReadFile(filepath.Join(dir, "package.json")); err == nil {
		var pkg struct {
			Main string `json:"main"`
		}
		if err := json.Unmarshal(b, &pkg); err != nil {
			return "", fmt.Errorf("%s: %w", filepath.Join(dir, "package.json"), err)
		}
		if pkg.Main != "" {
			p := filepath.Join(dir, filepath.FromSlash(pkg.Main))
			if _, err := os.Stat(p); err != nil {
				return "", fmt.Errorf("package.json's main %q does not exist in %s", pkg.Main, dir)
			}
			return p, nil
		}
	}
	for _, f := range []string{"index.js", "index.mjs"} {
		if p := filepath.Join(dir, f); exists(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s has no entry script: set \"main\" in package.json, or write index.js", dir)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Bundle writes to output one script of the project in dir: its entry
// and what it requires or imports, as CommonJS for ES2020. The entry's
// exports are the script's module.exports, so FunLess's template
// (module.exports.fl_main), an ES module's default export and an
// OpenWhisk-style global main all keep their handler. It returns
// esbuild's warnings; its errors are one error, each with file:line:column.
func Bundle(dir, output string) (warnings []string, err error) {
	entry, err := Entry(dir)
	if err != nil {
		return nil, err
	}
	res := api.Build(api.BuildOptions{
		EntryPoints:   []string{entry},
		AbsWorkingDir: dir,
		Bundle:        true,
		Write:         true,
		Outfile:       output,
		Format:        api.FormatCommonJS,
		Platform:      api.PlatformBrowser, // no Node built-ins: the engine has none
		Target:        Target,
		Charset:       api.CharsetUTF8,
		LegalComments: api.LegalCommentsEndOfFile,
		LogLevel:      api.LogLevelSilent,
	})
	for _, m := range res.Warnings {
		warnings = append(warnings, describe(dir, m))
	}
	if len(res.Errors) > 0 {
		lines := make([]string, 0, len(res.Errors))
		for _, m := range res.Errors {
			lines = append(lines, describe(dir, m))
		}
		hint := ""
		if strings.Contains(strings.Join(lines, "\n"), "Could not resolve") && !exists(filepath.Join(dir, "node_modules")) {
			hint = "\n(there is no node_modules: run npm install in " + dir + " first)"
		}
		return warnings, errors.New(strings.Join(lines, "\n") + hint)
	}
	return warnings, nil
}

// describe is one esbuild message as FILE:LINE:COLUMN: TEXT, the column
// 1-based.
func describe(dir string, m api.Message) string {
	if m.Location == nil {
		return m.Text
	}
	file := m.Location.File
	if rel, err := filepath.Rel(dir, filepath.Join(dir, file)); err == nil && !filepath.IsAbs(file) {
		file = rel
	}
	return fmt.Sprintf("%s:%d:%d: %s", file, m.Location.Line, m.Location.Column+1, m.Text)
}

// Template returns the files of a new JavaScript function project called
// name: FunLess's template shape (module.exports.fl_main), a package.json
// whose dependencies npm install fetches and the bundle includes.
func Template(name string) map[string]string {
	pkg := fmt.Sprintf(`{
  "name": %q,
  "version": "1.0.0",
  "private": true,
  "main": "index.js",
  "dependencies": {}
}
`, strings.ToLower(name))
	index := `// ` + name + ` is an edgefaas JavaScript function, in FunLess's template:
// module.exports.fl_main gets the invocation's arguments (a JSON object)
// and returns a JSON value, or a Promise of one. console.log lines are
// the activation's logs; setTimeout and fetch() work (fetch only reaches
// the hosts the function is allowed).
//
// npm packages: npm install lodash, then const _ = require("lodash");
// 'edgefaas fn build' bundles what the script requires into one script.
module.exports.fl_main = function (input) {
  const name = typeof input.name === "string" ? input.name : "World";
  console.log("greeting", name);
  return { message: "Hello, " + name + "!" };
};
`
	return map[string]string{
		"package.json": pkg,
		"index.js":     index,
		".gitignore":   "node_modules/\n" + name + ".js\n",
	}
}
