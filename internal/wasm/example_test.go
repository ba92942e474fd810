package wasm_test

import (
	"context"
	"fmt"
	"os"

	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// An engine compiles a module once and invokes it with JSON arguments. The
// module is examples/hello, built by `make examples`; if it cannot be built
// the example prints why, which fails it.
func Example() {
	ctx := context.Background()
	path, err := testmodules.Locate("hello")
	if err != nil {
		fmt.Println(err)
		return
	}
	code, err := os.ReadFile(path)
	if err != nil {
		fmt.Println(err)
		return
	}

	e, err := wasm.NewEngine(ctx, wasm.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer e.Close(ctx)
	m, err := e.Compile(ctx, code, wasm.Limits{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("ABI:", m.Info.ABI)

	res, err := e.Invoke(ctx, m, wasm.Invocation{Function: "examples/hello", Input: []byte(`{"name":"Ada"}`)})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(res.Output))
	// Output:
	// ABI: funless
	// {"message":"Hello, Ada!"}
}
