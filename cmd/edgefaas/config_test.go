package main

import (
	"testing"
)

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
