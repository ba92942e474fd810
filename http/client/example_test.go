package client_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/edgefaas/edgefaas/http/client"
)

// A client uploads a function to a core and invokes it. The core here is
// a real single-box site (`edgefaas core --with-worker`) on a loopback
// port, and the function examples/hello.
func Example() {
	core, err := startedCore()
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()

	c, err := client.New(core.url, core.guest)
	if err != nil {
		fmt.Println(err)
		return
	}
	f, err := c.CreateFunction(ctx, "_", client.Upload{Name: "hello", Code: core.hello})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("created %s/%s (%s ABI, version %d)\n", f.Module, f.Name, f.ABI, f.Version)

	out, err := c.Invoke(ctx, "_", "hello", json.RawMessage(`{"name":"Ada"}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(out))
	// Output:
	// created _/hello (funless ABI, version 1)
	// {"message":"Hello, Ada!"}
}
