// Package edgefaas is the guest SDK for edgefaas functions written in Go.
//
// A function is a main package that registers one handler and is built as
// a WebAssembly reactor with the standard toolchain:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o fn.wasm .
//
// The module follows the funless ABI, so it also runs on FunLess. Outbound
// HTTP and TCP use edgefaas's extension imports, which pass buffer sizes
// and so never truncate or overrun a response.
//
// Built for any other platform, the package runs the handler natively
// (Invoke), which is how examples are unit-tested and benchmarked against
// native Go.
package edgefaas

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// Handler is a function's body: it gets the JSON args and returns a value
// that is marshalled to JSON, or an error reported to the caller (FunLess
// answers it with 422).
type Handler func(input json.RawMessage) (any, error)

var handler Handler

// Handle registers the function's handler. Call it from init.
func Handle(h Handler) { handler = h }

// Response is an outbound HTTP response.
type Response struct {
	Status int
	Body   []byte
}

// Header is a request's headers, one value each. (net/http's type would
// pull megabytes of net/http into every guest.)
type Header map[string]string

// call runs the handler, turning a panic into an error so that the host
// reports it as the function's failure.
func call(input []byte) (out []byte, err error) {
	if handler == nil {
		return nil, fmt.Errorf("no handler registered: call edgefaas.Handle in init")
	}
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("panic: %v", r)
		}
	}()
	v, err := handler(json.RawMessage(input))
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// encodeHeaders writes headers as the host expects them, "K:V\nK:V".
func encodeHeaders(h Header) string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k + ":" + h[k] + "\n")
	}
	return b.String()
}
