package wasm

import (
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/edgefaas/edgefaas/internal/outbound"
)

// legacyResponseCap is how many response bytes fl_imps.__http_request
// writes. FunLess's guest wrapper allocates 1024 bytes and passes no
// capacity; writing more would overrun the guest's buffer, so old functions
// get at most that and new ones use edgefaas.http_request.
const legacyResponseCap = 1024

var errOutboundDisabled = errors.New("outbound HTTP is not enabled on this worker")

// hostFunc is a host function body with the call state resolved.
type hostFunc func(ctx context.Context, st *callState, m api.Module, stack []uint64)

// instantiateHostModules registers fl_imps and edgefaas in r, built from
// hostSignatures so that upload validation and instantiation agree.
func instantiateHostModules(ctx context.Context, r wazero.Runtime) error {
	bodies := map[string]hostFunc{
		"fl_imps.__get_input_data":  getInputData,
		"fl_imps.__insert_response": insertResponse,
		"fl_imps.__insert_error":    insertError,
		"fl_imps.__console_log":     consoleLog,
		"fl_imps.__http_request":    legacyHTTPRequest,
		"edgefaas.http_request":     httpRequest,
		"edgefaas.tcp_request":      tcpRequest,
		"edgefaas.response_read":    responseRead,
	}
	builders := map[string]wazero.HostModuleBuilder{}
	for full, sig := range hostSignatures {
		mod, name, _ := strings.Cut(full, ".")
		b, ok := builders[mod]
		if !ok {
			b = r.NewHostModuleBuilder(mod)
			builders[mod] = b
		}
		body := bodies[full]
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(ctx context.Context, m api.Module, stack []uint64) {
				st := callFrom(ctx)
				if st == nil {
					panic(abortf(ErrTrap, "host function %s called outside an invocation", full))
				}
				body(ctx, st, m, stack)
			}), sig.params, sig.results).
			Export(name)
	}
	for _, b := range builders {
		if _, err := b.Instantiate(ctx); err != nil {
			return err
		}
	}
	return nil
}

func read(m api.Module, what string, ptr, n uint32) []byte {
	b, ok := m.Memory().Read(ptr, n)
	if !ok {
		panic(abortf(ErrBadPointer, "%s: [%d, +%d) is outside memory of %d bytes", what, ptr, n, m.Memory().Size()))
	}
	return b
}

func write(m api.Module, what string, ptr uint32, b []byte) {
	if !m.Memory().Write(ptr, b) {
		panic(abortf(ErrBadPointer, "%s: [%d, +%d) is outside memory of %d bytes", what, ptr, len(b), m.Memory().Size()))
	}
}

func writeU32(m api.Module, what string, ptr, v uint32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], v)
	write(m, what, ptr, b[:])
}

func getInputData(_ context.Context, st *callState, m api.Module, stack []uint64) {
	write(m, "__get_input_data", api.DecodeU32(stack[0]), st.input)
}

func insertResponse(_ context.Context, st *callState, m api.Module, stack []uint64) {
	n := api.DecodeU32(stack[1])
	if int(n) > st.limits.MaxOutputBytes {
		panic(abortf(ErrOutputTooLarge, "%d bytes > %d", n, st.limits.MaxOutputBytes))
	}
	st.output = append(st.output[:0], read(m, "__insert_response", api.DecodeU32(stack[0]), n)...)
	st.hasOutput = true
}

func insertError(_ context.Context, st *callState, m api.Module, stack []uint64) {
	n := min(api.DecodeU32(stack[1]), uint32(st.limits.MaxOutputBytes))
	msg := string(read(m, "__insert_error", api.DecodeU32(stack[0]), n))
	st.errMsg = &msg
}

func consoleLog(_ context.Context, st *callState, m api.Module, stack []uint64) {
	n := min(api.DecodeU32(stack[1]), uint32(st.limits.MaxLogBytes)+1)
	st.log(string(read(m, "__console_log", api.DecodeU32(stack[0]), n)))
}

var legacyMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete}

// parseHeaders reads FunLess's header encoding, "K:V\nK:V".
func parseHeaders(s string) http.Header {
	h := http.Header{}
	for line := range strings.SplitSeq(s, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(k) != "" {
			h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		}
	}
	return h
}

// legacyHTTPRequest is FunLess's __http_request(resp_ptr, resp_len_ptr,
// status_ptr, method, uri_ptr, uri_len, hdr_ptr, hdr_len, body_ptr, body_len).
func legacyHTTPRequest(ctx context.Context, st *callState, m api.Module, stack []uint64) {
	respPtr, respLenPtr, statusPtr := api.DecodeU32(stack[0]), api.DecodeU32(stack[1]), api.DecodeU32(stack[2])
	method := "GET"
	if i := api.DecodeU32(stack[3]); int(i) < len(legacyMethods) {
		method = legacyMethods[i]
	}
	uri := string(read(m, "__http_request uri", api.DecodeU32(stack[4]), api.DecodeU32(stack[5])))
	hdr := string(read(m, "__http_request headers", api.DecodeU32(stack[6]), api.DecodeU32(stack[7])))
	body := append([]byte(nil), read(m, "__http_request body", api.DecodeU32(stack[8]), api.DecodeU32(stack[9]))...)
	// Check the out-pointers before doing the request, so a bad pointer
	// cannot cause a side effect.
	read(m, "__http_request status", statusPtr, 2)
	read(m, "__http_request response length", respLenPtr, 4)

	resp := st.do(ctx, method, uri, parseHeaders(hdr), body)
	status, out := uint16(0), []byte(nil)
	if resp.Err == nil {
		status, out = uint16(resp.Status), resp.Body
		if len(out) > legacyResponseCap {
			out = out[:legacyResponseCap]
		}
	}
	write(m, "__http_request response", respPtr, out)
	write(m, "__http_request status", statusPtr, []byte{byte(status), byte(status >> 8)})
	writeU32(m, "__http_request response length", respLenPtr, uint32(len(out)))
}

// httpRequest is the extension edgefaas.http_request(method_ptr, method_len,
// url_ptr, url_len, hdr_ptr, hdr_len, body_ptr, body_len, status_ptr,
// body_len_ptr) -> 0 ok | 1 failed. The host keeps the whole response body
// (or the failure message) and the guest reads it with response_read into a
// buffer of the size it was told: nothing is ever truncated or written past
// a guest buffer.
func httpRequest(ctx context.Context, st *callState, m api.Module, stack []uint64) {
	method := string(read(m, "http_request method", api.DecodeU32(stack[0]), api.DecodeU32(stack[1])))
	url := string(read(m, "http_request url", api.DecodeU32(stack[2]), api.DecodeU32(stack[3])))
	hdr := string(read(m, "http_request headers", api.DecodeU32(stack[4]), api.DecodeU32(stack[5])))
	body := append([]byte(nil), read(m, "http_request body", api.DecodeU32(stack[6]), api.DecodeU32(stack[7]))...)
	statusPtr, lenPtr := api.DecodeU32(stack[8]), api.DecodeU32(stack[9])
	read(m, "http_request status", statusPtr, 4)
	read(m, "http_request body length", lenPtr, 4)
	if method == "" {
		method = http.MethodGet
	}
	resp := st.do(ctx, strings.ToUpper(method), url, parseHeaders(hdr), body)
	writeU32(m, "http_request status", statusPtr, uint32(resp.Status))
	stack[0] = st.setPending(m, "http_request body length", lenPtr, resp)
}

// tcpRequest is the extension edgefaas.tcp_request(addr_ptr, addr_len,
// msg_ptr, msg_len, reply_len_ptr) -> 0 ok | 1 failed: it connects to
// host:port (under the same allow-list as HTTP), sends the message and
// keeps the reply (up to a newline or the peer closing) for response_read.
func tcpRequest(ctx context.Context, st *callState, m api.Module, stack []uint64) {
	addr := string(read(m, "tcp_request address", api.DecodeU32(stack[0]), api.DecodeU32(stack[1])))
	msg := append([]byte(nil), read(m, "tcp_request message", api.DecodeU32(stack[2]), api.DecodeU32(stack[3]))...)
	lenPtr := api.DecodeU32(stack[4])
	read(m, "tcp_request reply length", lenPtr, 4)
	resp := st.do(ctx, outbound.MethodTCP, "tcp://"+addr, nil, msg)
	stack[0] = st.setPending(m, "tcp_request reply length", lenPtr, resp)
}

// setPending keeps a response body (or the failure text) for response_read
// and tells the guest its length; it returns the import's result code.
func (st *callState) setPending(m api.Module, what string, lenPtr uint32, resp *outbound.Response) uint64 {
	code := uint64(0)
	st.pending = resp.Body
	if resp.Err != nil {
		st.pending, code = []byte(resp.Err.Error()), 1
	}
	writeU32(m, what, lenPtr, uint32(len(st.pending)))
	return code
}

// responseRead is edgefaas.response_read(ptr, cap) -> bytes copied. It
// consumes the pending response; call it until it returns 0.
func responseRead(_ context.Context, st *callState, m api.Module, stack []uint64) {
	ptr, capacity := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	n := min(int(capacity), len(st.pending))
	write(m, "response_read", ptr, st.pending[:n])
	st.pending = st.pending[n:]
	stack[0] = uint64(n)
}

// do sends one request through the worker's Outbound, within the call's deadline.
func (st *callState) do(ctx context.Context, method, url string, h http.Header, body []byte) *outbound.Response {
	var resp *outbound.Response
	st.effects = true
	st.blocking(ctx, func() { // without the call's CPU slot (slots.go)
		resp = st.outbound.Do(ctx, &outbound.Request{
			Function: st.function, AllowedHosts: st.hosts,
			Method: method, URL: url, Header: h, Body: body,
		})
	})
	if resp == nil {
		resp = &outbound.Response{Err: errors.New("outbound HTTP gave no answer")}
	}
	return resp
}
