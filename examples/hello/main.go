// Command hello is the smallest edgefaas function: it greets {"name": ...}.
package main

import (
	"encoding/json"

	edgefaas "github.com/edgefaas/edgefaas/sdk/go"
)

func init() {
	edgefaas.Handle(func(input json.RawMessage) (any, error) {
		var args struct {
			Name string `json:"name"`
		}
		if err := json.Unmarshal(input, &args); err != nil {
			return nil, err
		}
		if args.Name == "" {
			args.Name = "World"
		}
		return map[string]string{"message": "Hello, " + args.Name + "!"}, nil
	})
}

func main() {}
