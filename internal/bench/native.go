package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/edgefaas/edgefaas/internal/matrix"
)

// nativeRoleEnv makes a bench binary (the command or the test binary) run
// the native baseline server instead: see MaybeRunNative.
const nativeRoleEnv = "EDGEFAAS_BENCH_NATIVE"

// MaybeRunNative runs the native baseline server and exits if this process
// was started as one (by startNative). Call it first in main and TestMain.
func MaybeRunNative() {
	if os.Getenv(nativeRoleEnv) != "1" {
		return
	}
	// Die with the parent.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("LISTEN %s\n", l.Addr())
	srv := &http.Server{Handler: nativeHandler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		// Exit when the parent closes our stdin.
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	srv.Serve(l)
	os.Exit(0)
}

// nativeHandler serves the example functions' bodies, in plain Go, behind
// the same URL, request and answer shapes as the edgefaas API.
func nativeHandler() http.Handler {
	fetch := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second}}
	bodies := map[string]func(json.RawMessage) (any, error){
		"hello":        nativeHello,
		"sleep":        nativeSleep,
		"matrixmult":   nativeMatrix,
		"server_reply": nativeServerReply,
		"network":      func(in json.RawMessage) (any, error) { return nativeNetwork(fetch, in) },
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/fn/_/{name}", func(w http.ResponseWriter, r *http.Request) {
		fn, ok := bodies[r.PathValue("name")]
		if !ok {
			http.Error(w, `{"errors":{"detail":"Not Found"}}`, http.StatusNotFound)
			return
		}
		var req struct {
			Args json.RawMessage `json:"args"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 6<<20)).Decode(&req); err != nil {
			http.Error(w, `{"errors":{"detail":"Bad Request"}}`, http.StatusBadRequest)
			return
		}
		if len(req.Args) == 0 {
			req.Args = json.RawMessage(`{}`)
		}
		out, err := fn(req.Args)
		w.Header().Set("Content-Type", "application/json")
		if err != nil {
			w.WriteHeader(http.StatusUnprocessableEntity)
			json.NewEncoder(w).Encode(map[string]any{"errors": map[string]string{"detail": err.Error()}})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"data": out})
	})
	return mux
}

// The bodies below repeat the examples' few lines (examples/*/main.go).

func nativeHello(input json.RawMessage) (any, error) {
	var args struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(input, &args); err != nil {
		return nil, err
	}
	if args.Name == "" {
		args.Name = "World"
	}
	return map[string]string{"message": "Hello, " + args.Name + "!"}, nil
}

func nativeSleep(input json.RawMessage) (any, error) {
	args := struct {
		MS int `json:"ms"`
	}{MS: 3000}
	if err := json.Unmarshal(input, &args); err != nil {
		return nil, err
	}
	time.Sleep(time.Duration(args.MS) * time.Millisecond)
	return fmt.Sprintf("Slept for %g seconds", float64(args.MS)/1000), nil
}

func nativeMatrix(input json.RawMessage) (any, error) {
	args := struct {
		N    int    `json:"n"`
		Seed uint64 `json:"seed"`
	}{N: 100, Seed: 42}
	if err := json.Unmarshal(input, &args); err != nil {
		return nil, err
	}
	if args.N < 1 || args.N > 1000 {
		return nil, fmt.Errorf("n must be between 1 and 1000, got %d", args.N)
	}
	return map[string]any{"n": args.N, "checksum": matrix.Multiply(args.N, args.Seed)}, nil
}

func nativeServerReply(input json.RawMessage) (any, error) {
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
	c, err := net.DialTimeout("tcp", args.Address, 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(args.Message + "\n")); err != nil {
		return nil, err
	}
	reply, err := bufio.NewReader(io.LimitReader(c, 1<<20)).ReadString('\n')
	if err != nil && reply == "" {
		return nil, err
	}
	return map[string]string{"reply": strings.TrimSuffix(reply, "\n")}, nil
}

type netSample struct {
	Start  int64 `json:"start_ns"`
	End    int64 `json:"end_ns"`
	Status int   `json:"status"`
	Bytes  int   `json:"bytes"`
}

func nativeNetwork(hc *http.Client, input json.RawMessage) (any, error) {
	args := struct {
		URL   string `json:"url"`
		Count int    `json:"count"`
	}{Count: 16}
	if err := json.Unmarshal(input, &args); err != nil {
		return nil, err
	}
	if args.URL == "" {
		return nil, errors.New(`missing "url"`)
	}
	if args.Count < 1 || args.Count > 1000 {
		return nil, fmt.Errorf("count must be between 1 and 1000, got %d", args.Count)
	}
	out := make([]netSample, 0, args.Count)
	for i := 0; i < args.Count; i++ {
		start := time.Now().UnixNano()
		resp, err := hc.Get(args.URL)
		if err != nil {
			return nil, fmt.Errorf("request %d: %w", i+1, err)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("request %d: %w", i+1, err)
		}
		out = append(out, netSample{start, time.Now().UnixNano(), resp.StatusCode, len(b)})
	}
	return map[string]any{"requests": out}, nil
}

// nativeServer is a baseline server running as a child process (so its
// CPU time and RSS are its own, like edgefaas's): the native Go one, or
// Node.js for the JavaScript rows.
type nativeServer struct {
	cmd  *exec.Cmd
	url  string
	in   io.WriteCloser
	done chan struct{}
}

func startNative(ctx context.Context) (*nativeServer, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), nativeRoleEnv+"=1")
	return startServerProcess(ctx, "native server", cmd)
}

// startServerProcess starts cmd, a server that prints "LISTEN host:port"
// once it listens and exits when its stdin closes (or its parent dies),
// and waits for that line.
func startServerProcess(ctx context.Context, what string, cmd *exec.Cmd) (*nativeServer, error) {
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n := &nativeServer{cmd: cmd, in: in, done: make(chan struct{})}
	go func() { cmd.Wait(); close(n.done) }()
	lines := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			if a, ok := strings.CutPrefix(s.Text(), "LISTEN "); ok {
				lines <- a
				break
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case a := <-lines:
		n.url = "http://" + a
		return n, nil
	case <-n.done:
		return nil, fmt.Errorf("%s exited at start", what)
	case <-time.After(30 * time.Second):
		n.stop()
		return nil, fmt.Errorf("%s did not start within 30 s", what)
	case <-ctx.Done():
		n.stop()
		return nil, ctx.Err()
	}
}

func (n *nativeServer) pid() int { return n.cmd.Process.Pid }

func (n *nativeServer) stop() {
	n.in.Close()
	select {
	case <-n.done:
	case <-time.After(5 * time.Second):
		n.cmd.Process.Kill()
		<-n.done
	}
}
