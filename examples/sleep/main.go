// Command sleep waits (3 s by default, or {"ms": N}) and says so: the
// paper's sleep benchmark, which measures platform overhead around a
// known wait.
package main

import (
	"encoding/json"
	"fmt"
	"time"

	edgefaas "github.com/edgefaas/edgefaas/sdk/go"
)

func init() {
	edgefaas.Handle(func(input json.RawMessage) (any, error) {
		args := struct {
			MS int `json:"ms"`
		}{MS: 3000}
		if err := json.Unmarshal(input, &args); err != nil {
			return nil, err
		}
		time.Sleep(time.Duration(args.MS) * time.Millisecond)
		return fmt.Sprintf("Slept for %g seconds", float64(args.MS)/1000), nil
	})
}

func main() {}
