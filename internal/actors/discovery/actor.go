package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
)

// Name is the discovery process's registered name.
const Name = "discovery"

// Actor runs discovery on a node. On a core (Announce set) it multicasts a
// beacon every Interval on Interface. On a worker (OnCore set) it listens
// for beacons on Interface and resolves DNS names (a Kubernetes headless
// service, "name:port") every Interval, calling OnCore for every core it
// finds; OnCore is idempotent.
type Actor struct {
	gen.Server
	Interface string         // LAN interface for beacons; "" disables multicast
	Cookie    string         // signs and checks beacons
	Announce  *Beacon        // set on a core
	OnCore    func(b Beacon) // set on a worker
	DNS       []string       // "name:port" to resolve into core@IP:port (workers)
	Interval  time.Duration  // default 2 s
	Log       *slog.Logger

	conn   *net.UDPConn
	cancel context.CancelFunc
}

type tick struct{}

// listenFailed is the listener's last word: the process stops with the
// error, so its supervisor restarts it and Init opens a new socket.
type listenFailed struct{ err error }

// Init opens the multicast socket (a worker listens on its own goroutine).
func (a *Actor) Init(p *gen.ServerProcess, _ ...etf.Term) error {
	if a.Interval <= 0 {
		a.Interval = 2 * time.Second
	}
	// A killed process never ran Terminate: stop the listener and close
	// the socket its predecessor left behind.
	if a.cancel != nil {
		a.cancel()
	}
	if a.conn != nil {
		a.conn.Close()
		a.conn = nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	if a.Interface != "" {
		ifi, err := net.InterfaceByName(a.Interface)
		if err != nil {
			return fmt.Errorf("discovery interface %q: %w", a.Interface, err)
		}
		if a.Announce != nil {
			a.conn, err = sender(ifi)
		} else {
			a.conn, err = net.ListenMulticastUDP("udp4", ifi, &net.UDPAddr{IP: Group, Port: Port})
			if err == nil {
				go a.listen(ctx, p, a.conn)
			}
		}
		if err != nil {
			return fmt.Errorf("discovery on %s: %w", a.Interface, err)
		}
	}
	p.Send(p.Self(), tick{})
	return nil
}

// HandleInfo announces or resolves on every tick.
func (a *Actor) HandleInfo(p *gen.ServerProcess, msg etf.Term) gen.ServerStatus {
	if f, ok := msg.(listenFailed); ok {
		a.Log.Warn("discovery listener failed; restarting", "interface", a.Interface, "err", f.err)
		return gen.ServerStatus(fmt.Errorf("discovery listener: %w", f.err))
	}
	if _, ok := msg.(tick); ok {
		if a.Announce != nil && a.conn != nil {
			b := *a.Announce
			b.Time = time.Now()
			if _, err := a.conn.Write(Seal(b, a.Cookie)); err != nil {
				a.Log.Debug("beacon not sent", "err", err)
			}
		}
		a.resolve()
		p.SendAfter(p.Self(), tick{}, a.Interval)
	}
	return gen.ServerStatusOK
}

// Terminate closes the socket.
func (a *Actor) Terminate(_ *gen.ServerProcess, _ string) {
	a.cancel()
	if a.conn != nil {
		a.conn.Close()
	}
}

func (a *Actor) listen(ctx context.Context, p gen.Process, conn *net.UDPConn) {
	buf := make([]byte, 2048)
	for ctx.Err() == nil {
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			if ctx.Err() == nil {
				// Not a shutdown: never die silently (a worker would stop
				// finding cores); the process restarts with a new socket.
				p.Send(p.Self(), listenFailed{err})
			}
			return
		}
		b, err := Open(buf[:n], a.Cookie, time.Now())
		if err != nil {
			a.Log.Debug("ignored datagram", "from", from, "err", err)
			continue
		}
		a.OnCore(b)
	}
}

// resolve turns each DNS name into cores, one per address.
func (a *Actor) resolve() {
	if a.OnCore == nil {
		return
	}
	for _, hp := range a.DNS {
		host, port, err := net.SplitHostPort(hp)
		if err != nil {
			continue
		}
		pn, _ := strconv.Atoi(port)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		ips, err := net.DefaultResolver.LookupIP(ctx, "ip4", host)
		cancel()
		if err != nil {
			a.Log.Debug("core lookup failed", "name", host, "err", err)
			continue
		}
		for _, ip := range ips {
			a.OnCore(Beacon{Node: "core@" + ip.String(), Host: ip.String(), Port: pn})
		}
	}
}

// sender opens a UDP socket that multicasts on ifi only.
func sender(ifi *net.Interface) (*net.UDPConn, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, err
	}
	var src net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			src = n.IP.To4()
			break
		}
	}
	if src == nil {
		return nil, fmt.Errorf("interface %s has no IPv4 address", ifi.Name)
	}
	d := net.Dialer{
		LocalAddr: &net.UDPAddr{IP: src},
		Control: func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = setMulticastIF(fd, [4]byte(src))
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
	c, err := d.Dial("udp4", (&net.UDPAddr{IP: Group, Port: Port}).String())
	if err != nil {
		return nil, err
	}
	return c.(*net.UDPConn), nil
}
