//go:build !wasip1

package edgefaas

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Invoke runs the registered handler natively with JSON input and returns
// its JSON output. It exists for unit tests and native baselines; on a
// worker the host calls the module's __invoke instead.
func Invoke(input []byte) ([]byte, error) { return call(input) }

// Log writes one line to the process's structured log.
func Log(format string, args ...any) { slog.Info(fmt.Sprintf(format, args...)) }

var client = &http.Client{Timeout: 30 * time.Second}

// Fetch makes an HTTP request with net/http (natively no allow-list applies).

func Fetch(method, url string, header Header, body []byte) (*Response, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &Response{Status: resp.StatusCode, Body: data}, nil
}

// TCPRequest sends msg to addr and returns the reply up to a newline or EOF.
func TCPRequest(addr string, msg []byte) ([]byte, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(c).ReadBytes('\n')
	if err != nil && err != io.EOF {
		return nil, err
	}
	return bytes.TrimSuffix(line, []byte("\n")), nil
}
