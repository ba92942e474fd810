package api

import (
	"regexp"
	"testing"

	"github.com/edgefaas/edgefaas/internal/core/storage"
	"github.com/edgefaas/edgefaas/internal/testing/openapicheck"
)

var routeParam = regexp.MustCompile(`:([A-Za-z_]+)`)

// TestOpenAPIDescribesEveryRoute holds docs/openapi.yaml to the route
// table: every registered route is described, with the access it has
// (public routes with security: [], the others with the bearer token),
// and every described operation is registered.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	path, err := openapicheck.Path()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := openapicheck.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := storage.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s, err := New(Config{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	routes := s.Routes()
	if len(routes) == 0 {
		t.Fatal("the server registered no routes")
	}
	routed := map[openapicheck.Operation]bool{}
	for _, r := range routes {
		op := openapicheck.Operation{Method: r.Method, Path: routeParam.ReplaceAllString(r.Path, "{$1}")}
		routed[op] = true
		item := spec.Doc.Paths.Find(op.Path)
		if item == nil || item.GetOperation(op.Method) == nil {
			t.Errorf("%s (%s) is routed but not in docs/openapi.yaml", op, r.Access)
			continue
		}
		sec := item.GetOperation(op.Method).Security
		if sec == nil {
			sec = &spec.Doc.Security
		}
		described := "authenticated"
		if len(*sec) == 0 {
			described = "public"
		}
		if want := map[bool]string{true: "public", false: "authenticated"}[r.Access == "public"]; described != want {
			t.Errorf("%s is %s but docs/openapi.yaml describes it as %s", op, r.Access, described)
		}
	}
	for _, op := range spec.Operations() {
		if !routed[op] {
			t.Errorf("%s is in docs/openapi.yaml but not routed", op)
		}
	}
}
