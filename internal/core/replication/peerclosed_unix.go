//go:build linux || darwin || freebsd

package replication

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// peerClosed reports whether the peer of the idle connection c closed it
// or sent on it unasked (a TLS close_notify): a peek that does not wait
// finds the end of the stream, an error or bytes, where a live idle
// connection has nothing to read. False when it cannot tell.
func peerClosed(c net.Conn) bool {
	if tc, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tc.NetConn()
	}
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	var b [1]byte
	err = raw.Read(func(fd uintptr) bool {
		_, _, rerr := unix.Recvfrom(int(fd), b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		closed = !errors.Is(rerr, unix.EAGAIN)
		return true
	})
	return err == nil && closed
}
