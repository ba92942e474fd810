package attacks

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The attacks on the API's doors: the public join route and its
// connections.

// JoinBodies are join requests with no token of the core's: a certificate
// request for a 4096-bit RSA key (costly to verify, were a signature
// checked before the token) with a foreign token, 40 KiB of junk at the
// JSON bound, and the request again with no token.
func JoinBodies() ([][]byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 4096)
	if err != nil {
		return nil, err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "worker@attacker"}}, key)
	if err != nil {
		return nil, err
	}
	var bodies [][]byte
	for _, v := range []map[string]any{
		{"token": "0123456789abcdef0123456789abcdef", "node": "worker@attacker", "csr": csr},
		{"token": strings.Repeat("t", 1024), "node": "worker@attacker", "csr": bytes.Repeat([]byte{0x30}, 40<<10)},
		{"token": "", "node": "worker@attacker", "csr": csr},
	} {
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		bodies = append(bodies, raw)
	}
	return bodies, nil
}

// joinFlood sends JoinBodies to the join route from 16 callers, one after
// another each.
func joinFlood() Attack {
	var bodies [][]byte
	return Attack{
		Name: "join flood", What: "16 callers of the join route with foreign tokens, RSA-4096 certificate requests and 40 KiB of junk",
		Setup: func(context.Context, Box) error {
			var err error
			bodies, err = JoinBodies()
			return err
		},
		Run: func(ctx context.Context, b Box) map[string]int {
			var mu sync.Mutex
			i := 0
			return loop(ctx, 16, func(hc *http.Client) string {
				mu.Lock()
				body := bodies[i%len(bodies)]
				i++
				mu.Unlock()
				resp, err := hc.Post(b.URL+"/v1/nodes/join", "application/json", bytes.NewReader(body))
				if err != nil {
					return "no answer"
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return fmt.Sprint(resp.StatusCode)
			})
		},
	}
}

// connectionFlood lowers the box's open files limit to 1024 (as a small
// machine's default is), opens 1,200 idle keep-alive connections to the
// API, each after one request, and holds them until the attack ends; then
// it closes them and gives the box its limit back. The API must keep its
// descriptor reserve for the store, and the neighbour's connection, open
// before, is answered.
func connectionFlood() Attack {
	const (
		nofile = 1024
		flood  = 1200
	)
	return Attack{
		Name: "connection flood", What: "1,200 idle connections to a box whose open files limit is 1024",
		Setup: func(_ context.Context, b Box) error {
			if b.PID == nil {
				return errors.New("the box's process is not known: its open files limit cannot be lowered")
			}
			return nil
		},
		Run: func(ctx context.Context, b Box) map[string]int {
			got := map[string]int{}
			restore, err := lowerOpenFiles(b.PID(), nofile)
			if err != nil {
				got["not run: "+err.Error()]++
				return got
			}
			defer restore()
			addr := strings.TrimPrefix(b.URL, "http://")
			var conns []net.Conn
			defer func() {
				for _, c := range conns {
					c.Close()
				}
			}()
			for range flood {
				if ctx.Err() != nil {
					break
				}
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					got["not connected"]++
					continue
				}
				conns = append(conns, c)
				fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
				got["held open"]++
			}
			<-ctx.Done()
			return got
		},
	}
}
