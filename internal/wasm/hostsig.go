package wasm

import "github.com/tetratelabs/wazero/api"

type signature struct{ params, results []api.ValueType }

func i32s(n int) []api.ValueType {
	ts := make([]api.ValueType, n)
	for i := range ts {
		ts[i] = api.ValueTypeI32
	}
	return ts
}

// hostSignatures lists every host function edgefaas provides, by
// "module.name". The host modules are built from the same table, so upload
// validation and instantiation can never disagree.
var hostSignatures = map[string]signature{
	// FunLess imports, byte-compatible.
	"fl_imps.__get_input_data":  {i32s(1), nil},
	"fl_imps.__insert_response": {i32s(2), nil},
	"fl_imps.__insert_error":    {i32s(2), nil},
	"fl_imps.__console_log":     {i32s(2), nil},
	"fl_imps.__http_request":    {i32s(10), nil},
	// edgefaas extension.
	"edgefaas.http_request":  {i32s(10), i32s(1)},
	"edgefaas.tcp_request":   {i32s(5), i32s(1)},
	"edgefaas.response_read": {i32s(2), i32s(1)},
}
