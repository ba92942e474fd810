package api

import (
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func TestConnBound(t *testing.T) {
	for _, c := range []struct {
		nofile uint64
		want   int
	}{{0, maxConns}, {1 << 20, maxConns}, {1024, 1024 - fdReserve}, {fdReserve + 1, 1}, {fdReserve, 1}, {10, 1}} {
		if got := connBound(c.nofile); got != c.want {
			t.Errorf("connBound(%d) = %d; want %d", c.nofile, got, c.want)
		}
	}
}

// TestConnLimiter: with a bound of 2, a third connection is accepted only
// once one of the first two is closed (the order of accepts shows it).
func TestConnLimiter(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newConnLimiter(tcp, func() int { return 2 })
	defer l.Close()
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	for range 3 {
		c, err := net.Dial("tcp", tcp.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first, second := <-accepted, <-accepted
	select {
	case <-accepted:
		t.Fatal("a third connection was accepted while two were open")
	default:
	}
	if l.Open() != 2 {
		t.Fatalf("open %d; want 2", l.Open())
	}
	first.Close()
	third := <-accepted
	third.Close()
	second.Close()
	second.Close() // a second Close gives nothing back twice
	// At most the accept loop's next Accept holds a place, for the
	// connection it waits for.
	if l.Open() > 1 {
		t.Fatalf("open %d after every close; want at most the accept waiting", l.Open())
	}
}

// TestIdleConnectionsGiveWay: at the bound, a new connection is taken in
// by closing the connection idle the longest between two requests (a
// keep-alive connection a client leaked or parked), not left waiting until
// the idle timeout frees one: one client holding every place with idle
// connections cannot lock the others out.
func TestIdleConnectionsGiveWay(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := newConnLimiter(tcp, func() int { return 2 })
	srv := &http.Server{
		Handler:     http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		IdleTimeout: time.Hour, // idle connections are never closed by time in this test
		ConnState:   trackConnState,
	}
	go srv.Serve(l)
	defer srv.Close()
	url := "http://" + tcp.Addr().String() + "/"
	get := func(c *http.Client) error {
		resp, err := c.Get(url)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		_, err = io.ReadAll(resp.Body)
		return err
	}
	// Two clients, each keeping its connection open and idle after one call.
	var leakers []*http.Client
	for range 2 {
		c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		if err := get(c); err != nil {
			t.Fatal(err)
		}
		leakers = append(leakers, c)
	}
	if l.Open() != 2 {
		t.Fatalf("open %d; want the two idle connections", l.Open())
	}
	// A third client is answered; the bound held throughout.
	third := &http.Client{Transport: &http.Transport{}, Timeout: time.Minute}
	if err := get(third); err != nil {
		t.Fatalf("a third client while two connections idle at the bound: %v", err)
	}
	if n := l.Open(); n > 2 {
		t.Fatalf("open %d; want at most the bound", n)
	}
	// The evicted clients get their answers again on a new connection.
	for i, c := range leakers {
		c.Timeout = time.Minute
		if err := get(c); err != nil {
			t.Errorf("client %d after its idle connection was closed: %v", i, err)
		}
	}
}
