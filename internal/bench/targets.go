package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/edgefaas/edgefaas/internal/egress"
	"github.com/edgefaas/edgefaas/internal/wasm"
)

// Target names, in report order.
const (
	tEdgefaas  = "edgefaas"   // core + worker(s), separate processes
	tSingleBox = "single-box" // core --with-worker: one process, one node
	tNative    = "native"     // plain Go net/http, same bodies
	tInProc    = "in-process" // the same .wasm through wazero, no network
)

// target is something the workloads invoke functions on.
type target struct {
	name string
	// invoke runs function fn with JSON args and returns the response body
	// (the API's envelope for HTTP targets, the output for in-process).
	invoke func(ctx context.Context, fn string, args []byte) ([]byte, error)
	// pids are the server processes whose CPU and RSS count.
	pids func() []int
	pl   *platform // edgefaas targets only
}

// httpTarget invokes through the API at base with keep-alive connections.
func httpTarget(name, base, token string, pids func() []int) *target {
	tr := &http.Transport{
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
	}
	hc := &http.Client{Transport: tr}
	auth := "Bearer " + token
	return &target{name: name, pids: pids, invoke: func(ctx context.Context, fn string, args []byte) ([]byte, error) {
		body := make([]byte, 0, len(args)+10)
		body = append(append(append(body, `{"args":`...), args...), '}')
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/fn/_/"+fn, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			if len(b) > 200 {
				b = b[:200]
			}
			return nil, fmt.Errorf("%w %d: %s", errStatus, resp.StatusCode, bytes.TrimSpace(b))
		}
		return b, nil
	}}
}

// inProc runs the example modules through a wazero engine in this process:
// the floor for Wasm (no network, no actors).
type inProc struct {
	engine  *wasm.Engine
	mu      sync.Mutex
	modules map[string]*wasm.Module
	allowed map[string][]string
}

func newInProc(ctx context.Context) (*inProc, error) {
	out := egress.New(egress.Config{AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Grantable: []string{"*"}})
	e, err := wasm.NewEngine(ctx, wasm.Config{Outbound: out})
	if err != nil {
		return nil, err
	}
	return &inProc{engine: e, modules: map[string]*wasm.Module{}, allowed: map[string][]string{}}, nil
}

func (p *inProc) add(ctx context.Context, name string, code []byte, allowed []string) error {
	m, err := p.engine.Compile(ctx, code, wasm.Limits{})
	if err != nil {
		return fmt.Errorf("in-process compile %s: %w", name, err)
	}
	p.mu.Lock()
	p.modules[name], p.allowed[name] = m, allowed
	p.mu.Unlock()
	return nil
}

func (p *inProc) target() *target {
	self := os.Getpid()
	return &target{name: tInProc, pids: func() []int { return []int{self} }, invoke: func(ctx context.Context, fn string, args []byte) ([]byte, error) {
		p.mu.Lock()
		m, al := p.modules[fn], p.allowed[fn]
		p.mu.Unlock()
		if m == nil {
			return nil, fmt.Errorf("in-process: no module %s", fn)
		}
		res, err := p.engine.Invoke(ctx, m, wasm.Invocation{Function: "_/" + fn, Input: args, AllowedHosts: al})
		if err != nil {
			return nil, err
		}
		return res.Output, nil
	}}
}
