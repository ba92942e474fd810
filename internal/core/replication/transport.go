package replication

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// The group's transport: Raft's own network transport over TCP, every
// connection mutual TLS with the node CA's certificates (the caller's
// tls.Config, as for node links), and every peer's certificate checked
// by the caller's PeerCheck once the handshake is done, before Raft reads
// a byte of it: a worker's certificate, signed by the same CA, must not
// speak for a core.

// PeerCheck accepts or refuses the certificate a peer presented, after
// its chain was verified by the tls.Config.
type PeerCheck func(cert *x509.Certificate) error

// TransportConfig is a member's listener and credentials.
type TransportConfig struct {
	// Bind is the TCP address to listen on (host:port).
	Bind string
	// Advertise is the address other members dial; empty means the
	// listener's address (which must then not be a wildcard).
	Advertise string
	// TLS is the node's mutual-TLS configuration: its certificate, and
	// client certificates required and verified against the node CA.
	TLS *tls.Config
	// Peer checks each peer's certificate; nil refuses every peer.
	Peer PeerCheck
	// Logger receives the transport's errors; nil is slog.Default().
	Logger *slog.Logger
}

// transportPool is how many idle connections to one peer are kept.
const transportPool = 3

// transportTimeout bounds one RPC's write; an InstallSnapshot scales it
// by the snapshot's size (Raft's rule).
const transportTimeout = 10 * time.Second

// handshakeTimeout bounds a TLS handshake and the byte after it, so a
// peer that stops mid-way cannot hold a connection.
const handshakeTimeout = 10 * time.Second

// Transport is a member's listener: Raft's network transport, and the
// forwarding of writes from followers to the leader on the same port. The
// first byte a dialer sends after the handshake says which:
// connRaft or connForward.
type Transport struct {
	*raft.NetworkTransport
	s *tlsStream

	mu   sync.Mutex
	idle map[raft.ServerAddress][]*forwardConn // forward.go
}

const (
	connRaft    = 'R'
	connForward = 'F'
)

// NewTLSTransport listens on c.Bind and returns the member's transport
// over mutual TLS.
func NewTLSTransport(c TransportConfig) (*Transport, error) {
	if c.TLS == nil {
		return nil, errors.New("group transport: no TLS configuration")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	ln, err := net.Listen("tcp", c.Bind)
	if err != nil {
		return nil, fmt.Errorf("group transport: listen on %s: %w", c.Bind, err)
	}
	adv := c.Advertise
	if adv == "" {
		adv = ln.Addr().String()
	}
	addr, err := net.ResolveTCPAddr("tcp", adv)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("group transport: advertised address %q: %w", adv, err)
	}
	if addr.IP == nil || addr.IP.IsUnspecified() {
		ln.Close()
		return nil, fmt.Errorf("group transport: advertised address %q is not one other cores can dial", adv)
	}
	peer := c.Peer
	if peer == nil {
		peer = func(*x509.Certificate) error { return errors.New("no peer is accepted") }
	}
	s := &tlsStream{ln: ln, addr: addr, cfg: c.TLS, peer: peer, log: c.Logger.With("component", "raft-net"),
		raftConns: make(chan net.Conn), closed: make(chan struct{})}
	go s.serve()
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft-net", Level: hclog.Error, DisableTime: true,
		Output: slogWriter{s.log}})
	return &Transport{NetworkTransport: raft.NewNetworkTransportWithLogger(s, transportPool, transportTimeout, hl), s: s}, nil
}

// tlsStream is a raft.StreamLayer: a TCP listener whose connections are
// mutual TLS, routed by their first byte to Raft or to the forwarding
// handler, and a dialer of the same.
type tlsStream struct {
	ln   net.Listener
	addr net.Addr
	cfg  *tls.Config
	peer PeerCheck
	log  *slog.Logger

	raftConns chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
	forward   atomic.Pointer[func(net.Conn)]

	mu       sync.Mutex
	forwards map[net.Conn]struct{} // open forwarding connections, closed with the stream
}

// serve accepts connections and routes each in its own goroutine, so one
// slow handshake holds only its own connection.
func (s *tlsStream) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("group transport: accept", "err", err)
			continue
		}
		go s.route(c)
	}
}

func (s *tlsStream) route(c net.Conn) {
	cc := &checkedConn{Conn: tls.Server(c, s.cfg), peer: s.peer}
	if err := cc.check(); err != nil {
		s.log.Debug("group transport: connection refused", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	var kind [1]byte
	cc.SetReadDeadline(time.Now().Add(handshakeTimeout))
	if _, err := io.ReadFull(cc, kind[:]); err != nil {
		cc.Close()
		return
	}
	cc.SetReadDeadline(time.Time{})
	switch kind[0] {
	case connRaft:
		select {
		case s.raftConns <- cc:
		case <-s.closed:
			cc.Close()
		}
	case connForward:
		f := s.forward.Load()
		if f == nil || !s.track(cc) {
			cc.Close()
			return
		}
		defer s.untrack(cc)
		(*f)(cc)
	default:
		cc.Close()
	}
}

// Accept returns the next Raft connection.
func (s *tlsStream) Accept() (net.Conn, error) {
	select {
	case c := <-s.raftConns:
		return c, nil
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

// track records an open forwarding connection; false once the stream
// is closed.
func (s *tlsStream) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.closed:
		return false
	default:
	}
	if s.forwards == nil {
		s.forwards = map[net.Conn]struct{}{}
	}
	s.forwards[c] = struct{}{}
	return true
}

func (s *tlsStream) untrack(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.forwards, c)
}

// Close stops accepting and closes the forwarding connections; Raft's
// own connections are Raft's to close.
func (s *tlsStream) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	s.mu.Lock()
	for c := range s.forwards {
		c.Close()
	}
	s.mu.Unlock()
	return s.ln.Close()
}

func (s *tlsStream) Addr() net.Addr { return s.addr }

// Dial connects to a member for Raft.
func (s *tlsStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.dial(address, timeout, connRaft)
}

// dial connects to a member, checks its certificate and says what the
// connection is for.
func (s *tlsStream) dial(address raft.ServerAddress, timeout time.Duration, kind byte) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	c, err := d.Dial("tcp", string(address))
	if err != nil {
		return nil, err
	}
	cc := &checkedConn{Conn: tls.Client(c, s.cfg), peer: s.peer}
	if err := cc.check(); err != nil {
		return nil, fmt.Errorf("group transport: %s: %w", address, err)
	}
	if _, err := cc.Write([]byte{kind}); err != nil {
		cc.Close()
		return nil, fmt.Errorf("group transport: %s: %w", address, err)
	}
	return cc, nil
}

// checkedConn is a TLS connection usable only once its handshake is done
// and its peer's certificate passed the check.
type checkedConn struct {
	*tls.Conn
	peer PeerCheck
	once sync.Once
	err  error
}

func (c *checkedConn) check() error {
	c.once.Do(func() {
		c.Conn.SetDeadline(time.Now().Add(handshakeTimeout))
		if err := c.Conn.Handshake(); err != nil {
			c.err = fmt.Errorf("TLS handshake: %w", err)
		} else if certs := c.Conn.ConnectionState().PeerCertificates; len(certs) == 0 {
			c.err = errors.New("the peer presented no certificate")
		} else if err := c.peer(certs[0]); err != nil {
			c.err = fmt.Errorf("peer refused: %w", err)
		}
		c.Conn.SetDeadline(time.Time{})
		if c.err != nil {
			c.Conn.Close()
		}
	})
	return c.err
}

func (c *checkedConn) Read(p []byte) (int, error) {
	if err := c.check(); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *checkedConn) Write(p []byte) (int, error) {
	if err := c.check(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
