package replication

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
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

// handshakeTimeout bounds a TLS handshake, so a peer that stops mid-way
// cannot hold a connection.
const handshakeTimeout = 10 * time.Second

// NewTLSTransport listens on c.Bind and returns Raft's network transport
// over mutual TLS.
func NewTLSTransport(c TransportConfig) (*raft.NetworkTransport, error) {
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
	s := &tlsStream{ln: ln, addr: addr, cfg: c.TLS, peer: peer}
	hl := hclog.New(&hclog.LoggerOptions{Name: "raft-net", Level: hclog.Error, DisableTime: true,
		Output: slogWriter{c.Logger.With("component", "raft-net")}})
	return raft.NewNetworkTransportWithLogger(s, transportPool, transportTimeout, hl), nil
}

// tlsStream is a raft.StreamLayer: a TCP listener whose connections are
// mutual TLS, and a dialer of the same.
type tlsStream struct {
	ln   net.Listener
	addr net.Addr
	cfg  *tls.Config
	peer PeerCheck
}

// Accept returns the next connection; its handshake and peer check run
// on its first read, in the goroutine Raft gives the connection, so one
// slow peer does not hold the others.
func (s *tlsStream) Accept() (net.Conn, error) {
	c, err := s.ln.Accept()
	if err != nil {
		return nil, err
	}
	return &checkedConn{Conn: tls.Server(c, s.cfg), peer: s.peer}, nil
}

func (s *tlsStream) Close() error   { return s.ln.Close() }
func (s *tlsStream) Addr() net.Addr { return s.addr }

// Dial connects to a member and checks its certificate before Raft
// writes to it.
func (s *tlsStream) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	c, err := d.Dial("tcp", string(address))
	if err != nil {
		return nil, err
	}
	cc := &checkedConn{Conn: tls.Client(c, s.cfg), peer: s.peer}
	if err := cc.check(); err != nil {
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
