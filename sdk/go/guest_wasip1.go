//go:build wasip1

package edgefaas

import (
	"errors"
	"fmt"
	"unsafe"
)

//go:wasmimport fl_imps __get_input_data
func getInputData(ptr uint32)

//go:wasmimport fl_imps __insert_response
func insertResponse(ptr, n uint32)

//go:wasmimport fl_imps __insert_error
func insertError(ptr, n uint32)

//go:wasmimport fl_imps __console_log
func consoleLog(ptr, n uint32)

//go:wasmimport edgefaas http_request
func httpRequest(methodPtr, methodLen, urlPtr, urlLen, hdrPtr, hdrLen, bodyPtr, bodyLen, statusPtr, lenPtr uint32) uint32

//go:wasmimport edgefaas tcp_request
func tcpRequest(addrPtr, addrLen, msgPtr, msgLen, lenPtr uint32) uint32

//go:wasmimport edgefaas response_read
func responseRead(ptr, capacity uint32) uint32

func ptr(b []byte) uint32 {
	if len(b) == 0 {
		return 0
	}
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}

//go:wasmexport __invoke
func invoke(inputLen int32) int32 {
	input := make([]byte, inputLen)
	if inputLen > 0 {
		getInputData(ptr(input))
	}
	out, err := call(input)
	if err != nil {
		msg := []byte(err.Error())
		insertError(ptr(msg), uint32(len(msg)))
		return 1
	}
	insertResponse(ptr(out), uint32(len(out)))
	return 0
}

// Log writes one line to the invocation's log.
func Log(format string, args ...any) {
	b := []byte(fmt.Sprintf(format, args...))
	consoleLog(ptr(b), uint32(len(b)))
}

// readPending fetches a response the host holds for this call.
func readPending(n uint32) []byte {
	buf := make([]byte, n)
	got := uint32(0)
	for got < n {
		k := responseRead(ptr(buf[got:]), n-got)
		if k == 0 {
			break
		}
		got += k
	}
	return buf[:got]
}

// Fetch makes an outbound HTTP request. The worker allows only the hosts
// granted to this function; a refusal or network failure is an error.
func Fetch(method, url string, header Header, body []byte) (*Response, error) {
	m, u, h := []byte(method), []byte(url), []byte(encodeHeaders(header))
	var status, n uint32
	rc := httpRequest(ptr(m), uint32(len(m)), ptr(u), uint32(len(u)), ptr(h), uint32(len(h)),
		ptr(body), uint32(len(body)), uint32(uintptr(unsafe.Pointer(&status))), uint32(uintptr(unsafe.Pointer(&n))))
	data := readPending(n)
	if rc != 0 {
		return nil, errors.New(string(data))
	}
	return &Response{Status: int(status), Body: data}, nil
}

// TCPRequest connects to addr (host:port), sends msg and returns the reply
// (up to a newline or the server closing). The same allow-list applies.
func TCPRequest(addr string, msg []byte) ([]byte, error) {
	a := []byte(addr)
	var n uint32
	rc := tcpRequest(ptr(a), uint32(len(a)), ptr(msg), uint32(len(msg)), uint32(uintptr(unsafe.Pointer(&n))))
	data := readPending(n)
	if rc != 0 {
		return nil, errors.New(string(data))
	}
	return data, nil
}
