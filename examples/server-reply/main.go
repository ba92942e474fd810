// Command server-reply sends {"message"} over TCP to {"address"} (host:port)
// and returns the server's reply: the paper's server-reply benchmark. The
// worker must allow the address for this function.
package main

import (
	"encoding/json"
	"errors"

	edgefaas "github.com/edgefaas/edgefaas/sdk/go"
)

func init() {
	edgefaas.Handle(func(input json.RawMessage) (any, error) {
		args := struct {
			Address string `json:"address"`
			Message string `json:"message"`
		}{Message: "ping"}
		if err := json.Unmarshal(input, &args); err != nil {
			return nil, err
		}
		if args.Address == "" {
			return nil, errors.New(`missing "address" (host:port of the server)`)
		}
		reply, err := edgefaas.TCPRequest(args.Address, []byte(args.Message+"\n"))
		if err != nil {
			return nil, err
		}
		return map[string]string{"reply": string(reply)}, nil
	})
}

func main() {}
