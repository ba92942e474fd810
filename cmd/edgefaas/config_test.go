package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestWriteDevConfig(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	path := filepath.Join(dir, "edgefaas", "config.json")

	if err := writeDevConfig("http://127.0.0.1:4000", "guest1", ""); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file: %v %v", fi, err)
	}
	c, _, err := loadConfig()
	if err != nil || c.Host != "http://127.0.0.1:4000" || c.Token != "guest1" {
		t.Fatalf("after writeDevConfig: %+v %v", c, err)
	}

	// Same platform: the admin token the user saved is kept.
	c.AdminToken = "admin1"
	if _, err := saveConfig(c); err != nil {
		t.Fatal(err)
	}
	if err := writeDevConfig("http://127.0.0.1:4000", "guest2", ""); err != nil {
		t.Fatal(err)
	}
	if c, _, _ = loadConfig(); c.Token != "guest2" || c.AdminToken != "admin1" {
		t.Errorf("same host: %+v", c)
	}
	// Another platform: the old admin token cannot be valid there.
	if err := writeDevConfig("http://127.0.0.1:5000", "guest3", ""); err != nil {
		t.Fatal(err)
	}
	if c, _, _ = loadConfig(); c.Host != "http://127.0.0.1:5000" || c.Token != "guest3" || c.AdminToken != "" {
		t.Errorf("other host: %+v", c)
	}
}

func TestInvokeArgs(t *testing.T) {
	for _, tc := range []struct {
		raw  string
		kv   []string
		want string
	}{
		{"", nil, `{}`},
		{`{"a": 1}`, nil, `{"a": 1}`},
		{"", []string{"name=Ada", "n:=3", "eq=a=b"}, `{"eq":"a=b","n":3,"name":"Ada"}`},
		{`{"a":1,"name":"x"}`, []string{"name=Ada"}, `{"a":1,"name":"Ada"}`},
	} {
		got, err := invokeArgs(nil, tc.raw, tc.kv)
		if err != nil || string(got) != tc.want {
			t.Errorf("invokeArgs(%q, %q) = %s, %v; want %s", tc.raw, tc.kv, got, err, tc.want)
		}
	}
	for _, bad := range [][]string{{"novalue"}, {"=x"}, {"k:=notjson"}} {
		if _, err := invokeArgs(nil, "", bad); err == nil {
			t.Errorf("invokeArgs accepted %q", bad)
		}
	}
	if _, err := invokeArgs(nil, "[1]", nil); err == nil {
		t.Error("invokeArgs accepted a JSON array")
	}
}
