// Package workloadtargets serves what the FunLess paper's network
// workloads talk to, on 127.0.0.1: a TCP line echo for server-reply and a
// small JSON HTTP answer for network. The benchmark and the tests that run
// those workloads share them, so both measure against the same peer.
package workloadtargets

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Echo answers each line sent to it with the same line (server-reply's
// peer). A connection is closed after 30 s or 1 MiB, so a stuck client
// cannot hold it.
type Echo struct {
	l  net.Listener
	wg sync.WaitGroup
}

// StartEcho listens on a free port of 127.0.0.1.
func StartEcho() (*Echo, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Echo{l: l}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go echoLines(c)
		}
	}()
	return s, nil
}

func echoLines(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(io.LimitReader(c, 1<<20))
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			if _, werr := c.Write(line); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Addr is the host:port to give server-reply.
func (s *Echo) Addr() string { return s.l.Addr().String() }

// Close stops accepting and waits for the accept loop to end.
func (s *Echo) Close() { s.l.Close(); s.wg.Wait() }

// Fetch answers every HTTP request with {"time_ns":N} (network's peer)
// and counts the requests.
type Fetch struct {
	srv *http.Server
	l   net.Listener
	n   atomic.Int64
}

// StartFetch listens on a free port of 127.0.0.1.
func StartFetch() (*Fetch, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &Fetch{l: l}
	f.srv = &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		f.n.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"time_ns":` + strconv.FormatInt(time.Now().UnixNano(), 10) + `}`))
	})}
	go f.srv.Serve(l)
	return f, nil
}

// Addr is the host:port it listens on (for an allowed_hosts entry).
func (f *Fetch) Addr() string { return f.l.Addr().String() }

// URL is the address to give network.
func (f *Fetch) URL() string { return "http://" + f.Addr() + "/" }

// Count is how many requests it has answered.
func (f *Fetch) Count() int { return int(f.n.Load()) }

// Close stops the server.
func (f *Fetch) Close() { f.srv.Close() }
