// Command matrixmult multiplies two n×n matrices (n = 100 by default, as in
// the paper's benchmark) filled from a seed, and returns a checksum.
package main

import (
	"encoding/json"
	"fmt"

	"github.com/edgefaas/edgefaas/internal/matrix"
	edgefaas "github.com/edgefaas/edgefaas/sdk/go"
)

func init() {
	edgefaas.Handle(func(input json.RawMessage) (any, error) {
		args := struct {
			N    int    `json:"n"`
			Seed uint64 `json:"seed"`
		}{N: 100, Seed: 42}
		if err := json.Unmarshal(input, &args); err != nil {
			return nil, err
		}
		if args.N < 1 || args.N > 1000 {
			return nil, fmt.Errorf("n must be between 1 and 1000, got %d", args.N)
		}
		return map[string]any{"n": args.N, "checksum": matrix.Multiply(args.N, args.Seed)}, nil
	})
}

func main() {}
