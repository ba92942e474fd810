package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestConfigData runs the scripts in testdata/config/. Each file is one
// config file's life; the commands change it in turn:
//
//	read              the input is the file's content: how it is read,
//	                  as it would be written back
//	dev host=H token=T [fingerprint=F]
//	                  what `edgefaas dev` writes (setDev)
//	select [flag=NAME] [env=NAME]
//	                  the context a command uses (flag: --context,
//	                  env: $EDGEFAAS_CONTEXT)
func TestConfigData(t *testing.T) {
	datadriven.Walk(t, "testdata/config", func(t *testing.T, path string) {
		var c cliConfig
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			args := map[string]string{}
			for _, a := range d.CmdArgs {
				args[a.Key] = strings.Join(a.Vals, ",")
			}
			switch d.Cmd {
			case "read":
				var err error
				if c, err = decodeConfig([]byte(d.Input)); err != nil {
					return "error: " + err.Error() + "\n"
				}
			case "dev":
				c.setDev(args["host"], args["token"], args["fingerprint"])
			case "select":
				cmd := rootCommand()
				if n, ok := args["flag"]; ok {
					if err := cmd.ParseFlags([]string{"--context", n}); err != nil {
						d.Fatalf(t, "%v", err)
					}
				}
				t.Setenv(envContext, args["env"])
				name, ctx, err := selectContext(cmd, c)
				if err != nil {
					return "error: " + err.Error() + "\n"
				}
				return fmt.Sprintf("context %q host %q\n", name, ctx.Host)
			default:
				d.Fatalf(t, "unknown command %s", d.Cmd)
			}
			raw, err := encodeConfig(c)
			if err != nil {
				d.Fatalf(t, "%v", err)
			}
			return string(raw)
		})
	})
}

// TestSaveConfig: the file is 0600 in a 0700 directory and reads back as
// written.
func TestSaveConfig(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	var c cliConfig
	c.put("site", clientContext{Host: "http://10.0.0.2:4000", Token: "t"})
	c.CurrentContext = "site"
	path, err := saveConfig(c)
	if err != nil {
		t.Fatal(err)
	}
	if path != filepath.Join(dir, "edgefaas", "config.json") {
		t.Errorf("path %s", path)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v %v", fi, err)
	}
	if di, err := os.Stat(filepath.Dir(path)); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("config directory: %v %v", di, err)
	}
	got, _, err := loadConfig()
	if err != nil || got.CurrentContext != "site" || got.Contexts["site"] != c.Contexts["site"] {
		t.Errorf("read back %+v, %v", got, err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("files left in the config directory: %v", entries)
	}
}
