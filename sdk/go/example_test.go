//go:build !wasip1

package edgefaas_test

import (
	"encoding/json"
	"errors"
	"fmt"

	edgefaas "github.com/edgefaas/edgefaas/sdk/go"
)

// A function registers its handler in init; built natively, Invoke runs it
// with JSON arguments as a worker would, which is how a function is
// unit-tested without a platform.
func Example() {
	edgefaas.Handle(func(input json.RawMessage) (any, error) {
		var args struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(input, &args); err != nil {
			return nil, err
		}
		if args.Name == "" {
			return nil, errors.New("name is required")
		}
		return map[string]string{"message": "Hello, " + args.Name + "!"}, nil
	})

	out, err := edgefaas.Invoke([]byte(`{"name":"Ada"}`))
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println(string(out))

	// An error the handler returns is the function's failure.
	_, err = edgefaas.Invoke([]byte(`{}`))
	fmt.Println("error:", err)
	// Output:
	// {"message":"Hello, Ada!"}
	// error: name is required
}
