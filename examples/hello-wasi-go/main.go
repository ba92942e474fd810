// Command hello-wasi-go is hello as a plain WASI command: JSON args on
// stdin, JSON result on stdout, logs on stderr, a non-zero exit with a
// message on stderr for an error. Built with GOOS=wasip1 GOARCH=wasm and
// no SDK at all.
package main

import (
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	var args struct {
		Name string `json:"name"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&args); err != nil {
		fmt.Fprintln(os.Stderr, "bad input:", err)
		os.Exit(1)
	}
	if args.Name == "" {
		args.Name = "World"
	}
	fmt.Fprintln(os.Stderr, "greeting", args.Name)
	json.NewEncoder(os.Stdout).Encode(map[string]string{"message": "Hello, " + args.Name + "!"})
}
