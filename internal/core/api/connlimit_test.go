package api

import (
	"net"
	"testing"
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
